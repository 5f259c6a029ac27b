// Array views and argument checks (see arrays.h).
#include "bindings/arrays.h"

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "core/errors.h"

namespace pyenvpool::bind {
namespace {

std::string TypeName(py::handle obj) {
  return py::str(py::type::of(obj).attr("__name__")).cast<std::string>();
}

std::string ShapeText(const py::array& arr) {
  return py::str(py::tuple(arr.attr("shape"))).cast<std::string>();
}

std::string ShapeText(int64_t rows, const std::vector<int64_t>& row_shape) {
  std::string out = "(" + std::to_string(rows);
  for (int64_t d : row_shape) out += ", " + std::to_string(d);
  return out + (row_shape.empty() ? ",)" : ")");
}

py::array AsArray(py::handle obj) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  return py::module_::import("numpy").attr("asarray")(obj);
}

// Reads entry i of an integer array of any width as int64 (uint64 beyond the
// int64 range reads as -1, which every range check rejects).
template <class T>
int64_t ReadAs(const void* data, int64_t i) {
  const T v = static_cast<const T*>(data)[i];
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return -1;
  }
  return static_cast<int64_t>(v);
}

using Reader = int64_t (*)(const void*, int64_t);

Reader ReaderFor(const py::array& arr) {
  const bool is_signed = arr.dtype().kind() == 'i';
  switch (arr.itemsize()) {
    case 1:
      return is_signed ? &ReadAs<int8_t> : &ReadAs<uint8_t>;
    case 2:
      return is_signed ? &ReadAs<int16_t> : &ReadAs<uint16_t>;
    case 4:
      return is_signed ? &ReadAs<int32_t> : &ReadAs<uint32_t>;
    default:
      return is_signed ? &ReadAs<int64_t> : &ReadAs<uint64_t>;
  }
}

bool IsInteger(const py::array& arr) {
  const char kind = arr.dtype().kind();
  return kind == 'i' || kind == 'u';
}

bool IsEngineLayout(const py::array& arr, char kind) {
  return arr.dtype().kind() == kind && arr.itemsize() == 4 && (arr.flags() & py::array::c_style);
}

// What row j of a batch of actions belongs to: "env 3", "state id 42".
std::string RowName(const int64_t* ids, int64_t j, const char* kind) {
  return std::string(kind) + " " + std::to_string(ids != nullptr ? ids[j] : j);
}

}  // namespace

py::dtype ToNumpy(DType dtype) { return py::dtype(std::string(1, static_cast<char>(dtype))); }

py::array View(const BufferPtr& buffer, DType dtype, int64_t rows,
               const std::vector<int64_t>& row_shape) {
  std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(rows)};
  for (int64_t d : row_shape) shape.push_back(static_cast<py::ssize_t>(d));
  auto* owner = new BufferPtr(buffer);
  py::capsule base(owner, [](void* p) { delete static_cast<BufferPtr*>(p); });
  return py::array(ToNumpy(dtype), shape, buffer->data(), base);
}

py::dict ObsViews(const std::vector<BufferPtr>& buffers, const TaskSpec& spec, int64_t rows,
                  bool info) {
  py::dict d;
  for (size_t f = 0; f < spec.obs_fields.size(); ++f) {
    const FieldSpec& field = spec.obs_fields[f];
    if (field.info != info) continue;
    d[py::str(field.name)] = View(buffers[f], field.dtype, rows, field.shape);
  }
  return d;
}

py::array IntegerVector(py::handle obj, const char* name, int64_t length) {
  if (obj.is_none()) throw TypeError(std::string(name) + " must be an integer array, got None");
  py::array arr = AsArray(obj);
  if (!py::isinstance<py::array>(obj) && arr.size() == 0) arr = py::array_t<int64_t>(0);
  if (!IsInteger(arr)) {
    throw TypeError(std::string(name) + " must have an integer dtype, got " +
                    py::str(arr.dtype()).cast<std::string>());
  }
  if (arr.ndim() != 1) {
    throw ValueError(std::string(name) + " must be 1-D, got shape " + ShapeText(arr));
  }
  if (length >= 0 && arr.shape(0) != length) {
    throw ValueError(std::string(name) + " must have " + std::to_string(length) +
                     " entries, got " + std::to_string(arr.shape(0)));
  }
  if (!(arr.flags() & py::array::c_style)) {
    throw ValueError(std::string(name) +
                     " must be C-contiguous; pass np.ascontiguousarray(...) instead of a "
                     "strided view");
  }
  return arr;
}

std::vector<int64_t> EnvIds(py::handle env_ids, const char* name, int64_t num_envs,
                            bool unique) {
  if (env_ids.is_none()) {
    std::vector<int64_t> all(num_envs);
    for (int64_t i = 0; i < num_envs; ++i) all[i] = i;
    return all;
  }
  py::array arr = AsArray(env_ids);
  if (arr.ndim() == 0) {
    throw ValueError(std::string(name) + " must be a 1-D array of env indices, got a scalar");
  }
  if (arr.size() == 0 && arr.ndim() == 1) return {};
  arr = IntegerVector(arr, name, -1);
  const int64_t n = arr.shape(0);
  std::vector<int64_t> out(n);
  const Reader read = ReaderFor(arr);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = read(arr.data(), i);
    if (out[i] < 0 || out[i] >= num_envs) {
      throw ValueError(std::string(name) + "[" + std::to_string(i) + "] = " +
                       py::str(arr[py::int_(i)]).cast<std::string>() + " is out of range [0, " +
                       std::to_string(num_envs) + ")");
    }
  }
  if (unique) {
    std::vector<bool> seen(num_envs, false);
    for (int64_t i = 0; i < n; ++i) {
      if (seen[out[i]]) {
        throw ValueError(std::string(name) + " contains " + std::to_string(out[i]) +
                         " more than once");
      }
      seen[out[i]] = true;
    }
  }
  return out;
}

StateIds::StateIds(py::handle obj, const char* name, int64_t length) {
  array_ = IntegerVector(obj, name, length);
  size_ = array_.shape(0);
  if (array_.dtype().kind() == 'i' && array_.itemsize() == 8) {
    data_ = static_cast<const int64_t*>(array_.data());
    return;
  }
  copy_.resize(size_);
  const Reader read = ReaderFor(array_);
  for (int64_t i = 0; i < size_; ++i) copy_[i] = read(array_.data(), i);
  data_ = copy_.data();
}

// ------------------------------------------------------------------ actions
ActionBatch::ActionBatch(py::handle actions, const ActionSpec& spec, int64_t k)
    : spec_(spec), k_(k) {
  if (spec.kind == ActionSpec::Kind::kDiscrete) {
    array_ = IntegerVector(actions, "actions", k);
    NoteLayout();
    return;
  }
  if (actions.is_none()) throw TypeError("actions must be an array, got None");
  array_ = AsArray(actions);
  const char kind = array_.dtype().kind();
  if (spec.kind == ActionSpec::Kind::kMultiDiscrete && !IsInteger(array_)) {
    throw TypeError("actions must have an integer dtype, got " +
                    py::str(array_.dtype()).cast<std::string>());
  }
  if (spec.kind == ActionSpec::Kind::kBox && kind != 'f' && kind != 'i' && kind != 'u') {
    throw TypeError("actions must have a real (float or integer) dtype, got " +
                    py::str(array_.dtype()).cast<std::string>());
  }
  bool shape_ok = array_.ndim() == static_cast<py::ssize_t>(spec.shape.size() + 1) &&
                  array_.shape(0) == k;
  for (size_t d = 0; shape_ok && d < spec.shape.size(); ++d) {
    shape_ok = array_.shape(d + 1) == spec.shape[d];
  }
  if (!shape_ok) {
    throw ValueError("actions must have shape " + ShapeText(k, spec.shape) + ", got " +
                     ShapeText(array_));
  }
  if (spec.kind == ActionSpec::Kind::kBox && !IsEngineLayout(array_, 'f')) {
    // Another dtype or a strided view: a float32 copy. Values beyond the
    // float32 range become infinite there, and Check() refuses them.
    py::module_ np = py::module_::import("numpy");
    py::object quiet = np.attr("errstate")(py::arg("over") = "ignore", py::arg("invalid") = "ignore");
    quiet.attr("__enter__")();
    array_ = np.attr("ascontiguousarray")(array_, py::arg("dtype") = np.attr("float32"));
    quiet.attr("__exit__")(py::none(), py::none(), py::none());
  }
  NoteLayout();
}

// What Check needs to know about the array, read here with the GIL held
// (Check runs without it and must not touch Python objects, dtype included).
void ActionBatch::NoteLayout() {
  c_contiguous_ = (array_.flags() & py::array::c_style) != 0;
  if (!IsInteger(array_)) return;
  int32_rows_ = IsEngineLayout(array_, 'i');
  uint64_ = array_.dtype().kind() == 'u' && array_.itemsize() == 8;
  read_ = ReaderFor(array_);
}

const void* ActionBatch::Check(const int64_t* ids, const char* row_kind) {
  const int64_t elements = spec_.NumElements();
  const int64_t n = k_ * elements;
  if (spec_.kind == ActionSpec::Kind::kBox) {
    const auto* values = static_cast<const float*>(array_.data());
    for (int64_t e = 0; e < n; ++e) {
      if (!std::isfinite(values[e])) {
        const int64_t j = e / elements;
        throw ValueError("actions[" + std::to_string(j) + "] (" + RowName(ids, j, row_kind) +
                         ") is NaN or infinite (or beyond the float32 range); actions must be "
                         "finite");
      }
    }
    return values;
  }

  // Discrete and MultiDiscrete: int32 in [0, n_c) for component c.
  const int32_t* nvec = spec_.nvec.data();
  auto out_of_range = [&](int64_t e, const std::string& value) {
    const int64_t j = e / elements, c = e % elements;
    const std::string where = spec_.kind == ActionSpec::Kind::kDiscrete
                                  ? "actions[" + std::to_string(j) + "]"
                                  : "actions[" + std::to_string(j) + ", " + std::to_string(c) + "]";
    throw ValueError(where + " = " + value + " is out of range [0, " + std::to_string(nvec[c]) +
                     ")" + (ids != nullptr ? " (" + RowName(ids, j, row_kind) + ")" : ""));
  };
  if (int32_rows_) {
    const auto* a = static_cast<const int32_t*>(array_.data());
    bool ok = true;
    if (elements == 1) {
      const uint32_t limit = static_cast<uint32_t>(nvec[0]);
      for (int64_t e = 0; e < n; ++e) ok &= static_cast<uint32_t>(a[e]) < limit;
    } else {
      for (int64_t e = 0; e < n; ++e) {
        ok &= static_cast<uint32_t>(a[e]) < static_cast<uint32_t>(nvec[e % elements]);
      }
    }
    if (ok) return a;
    for (int64_t e = 0; e < n; ++e) {
      if (a[e] < 0 || a[e] >= nvec[e % elements]) out_of_range(e, std::to_string(a[e]));
    }
  }
  if (!c_contiguous_) {
    throw ValueError(
        "actions must be C-contiguous; pass np.ascontiguousarray(...) instead of a strided view");
  }
  scratch_.resize(n * sizeof(int32_t));
  auto* dst = reinterpret_cast<int32_t*>(scratch_.data());
  const Reader read = read_;
  for (int64_t e = 0; e < n; ++e) {
    const int64_t value = read(array_.data(), e);
    if (value < 0 || value >= nvec[e % elements]) {
      // uint64 beyond int64 reads as -1: show the caller's own digits instead.
      out_of_range(e, uint64_ ? std::to_string(static_cast<const uint64_t*>(array_.data())[e])
                              : std::to_string(value));
    }
    dst[e] = static_cast<int32_t>(value);
  }
  return dst;
}

// ---------------------------------------------------------------- instances
std::vector<py::array> CheckInstances(py::handle instances, const TaskSpec& spec,
                                      const std::string& task_id, int64_t k) {
  const auto& fields = spec.instance_fields;
  if (fields.empty()) throw ValueError(task_id + " does not accept instances");
  if (!py::isinstance<py::dict>(instances)) throw TypeError("instances must be a dict of arrays");
  py::dict given = py::reinterpret_borrow<py::dict>(instances);
  std::string expected;
  for (const auto& f : fields) expected += (expected.empty() ? "'" : ", '") + f.name + "'";
  for (auto item : given) {
    const std::string key = py::str(item.first);
    bool known = false;
    for (const auto& f : fields) known |= f.name == key;
    if (!known) {
      throw KeyError("unknown instance field '" + key + "'; expected [" + expected + "]");
    }
  }
  py::module_ np = py::module_::import("numpy");
  std::vector<py::array> out;
  for (const auto& f : fields) {
    if (!given.contains(f.name)) throw ValueError("instances is missing field '" + f.name + "'");
    py::array arr = AsArray(given[py::str(f.name)]);
    const std::string label = "instance field '" + f.name + "'";
    bool shape_ok = arr.ndim() == static_cast<py::ssize_t>(f.shape.size() + 1) && arr.shape(0) == k;
    for (size_t d = 0; shape_ok && d < f.shape.size(); ++d) shape_ok = arr.shape(d + 1) == f.shape[d];
    if (!shape_ok) {
      throw ValueError(label + " must have shape " + ShapeText(k, f.shape) + ", got " +
                       ShapeText(arr));
    }
    const char kind = arr.dtype().kind();
    const py::dtype target = ToNumpy(f.dtype);
    const char target_kind = target.kind();
    const std::string got = py::str(arr.dtype()).cast<std::string>();
    if (target_kind == 'b' && kind != 'b') throw TypeError(label + " must be bool, got " + got);
    if ((target_kind == 'i' || target_kind == 'u') && kind != 'i' && kind != 'u') {
      throw TypeError(label + " must be integer, got " + got);
    }
    if (target_kind == 'f' && kind != 'i' && kind != 'u' && kind != 'f') {
      throw TypeError(label + " must be numeric, got " + got);
    }
    if (target_kind == 'f' && !np.attr("isfinite")(arr).attr("all")().cast<bool>()) {
      throw ValueError(label + " contains NaN or infinity");
    }
    if ((target_kind == 'i' || target_kind == 'u') && arr.size() > 0) {
      py::object info = np.attr("iinfo")(target);
      if (np.attr("less")(arr.attr("min")(), info.attr("min")).cast<bool>() ||
          np.attr("greater")(arr.attr("max")(), info.attr("max")).cast<bool>()) {
        throw ValueError(label + " has values outside " + py::str(target).cast<std::string>());
      }
    }
    out.push_back(np.attr("ascontiguousarray")(arr, target));
  }
  return out;
}

// -------------------------------------------------------------------- ints
int64_t IntArgument(py::handle value, const char* name, int64_t low, int64_t high) {
  if (py::isinstance<py::bool_>(value) || !PyIndex_Check(value.ptr())) {
    throw TypeError(std::string(name) + " must be an int, got " + TypeName(value));
  }
  py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(value.ptr()));
  if (!index) throw py::error_already_set();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow != 0 || v < low || v > high) {
    const std::string bound = high == std::numeric_limits<int64_t>::max()
                                  ? ">= " + std::to_string(low)
                                  : "in [" + std::to_string(low) + ", " + std::to_string(high) + "]";
    throw ValueError(std::string(name) + " must be " + bound + ", got " +
                     py::str(index).cast<std::string>());
  }
  return v;
}

uint64_t SeedArgument(py::handle value, const char* name) {
  if (py::isinstance<py::bool_>(value) || !PyIndex_Check(value.ptr())) {
    throw TypeError(std::string(name) + " must be an int, got " + TypeName(value));
  }
  py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(value.ptr()));
  if (!index) throw py::error_already_set();
  const unsigned long long v = PyLong_AsUnsignedLongLong(index.ptr());
  if (PyErr_Occurred()) {
    PyErr_Clear();
    throw ValueError(std::string(name) + " must be in [0, 2**64 - 1], got " +
                     py::str(index).cast<std::string>());
  }
  return v;
}

std::vector<uint64_t> Seeds(py::handle seed, int64_t k, bool* given) {
  *given = !seed.is_none();
  if (seed.is_none()) return {};
  if (PyIndex_Check(seed.ptr()) && !py::isinstance<py::bool_>(seed) &&
      !py::isinstance<py::array>(seed)) {
    return std::vector<uint64_t>(k, SeedArgument(seed, "seed"));
  }
  py::list seeds;
  if (py::isinstance<py::array>(seed)) {
    seeds = py::reinterpret_borrow<py::array>(seed).attr("reshape")(-1).attr("tolist")();
  } else if (py::isinstance<py::list>(seed) || py::isinstance<py::tuple>(seed)) {
    seeds = py::list(py::reinterpret_borrow<py::object>(seed));
  } else {
    throw TypeError("seed must be an int or a sequence of ints, got " + TypeName(seed));
  }
  if (static_cast<int64_t>(seeds.size()) != k) {
    throw ValueError("got " + std::to_string(seeds.size()) + " seeds for " + std::to_string(k) +
                     " envs");
  }
  std::vector<uint64_t> out;
  for (auto s : seeds) out.push_back(SeedArgument(s, "seed"));
  return out;
}

}  // namespace pyenvpool::bind
