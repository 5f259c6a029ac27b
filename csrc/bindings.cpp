// The pybind11 module pyenvpool._core: a thin layer over PoolBase.
//
// Rules every method follows:
// - Arguments are checked while the GIL is held; nothing is written yet.
// - The GIL is released around every engine call, and the pool's mutex is
//   taken inside it, so calls from several Python threads are serialised.
//   Anything shared (the action scratch buffer, the pool) is touched only
//   under that mutex.
// - Results are NumPy views of engine buffers. Each view holds a reference to
//   its buffer, so it never dangles; the live views are built once and the
//   same objects are returned by every step (no per-step allocation).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/pool.h"
#include "registry.h"

namespace py = pybind11;

namespace pyenvpool {
namespace {

py::dtype ToNumpy(DType dtype) { return py::dtype(std::string(1, static_cast<char>(dtype))); }

// A NumPy array over `buffer` that keeps the buffer alive.
py::array View(const BufferPtr& buffer, DType dtype, int64_t rows,
               const std::vector<int64_t>& row_shape) {
  std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(rows)};
  for (int64_t d : row_shape) shape.push_back(static_cast<py::ssize_t>(d));
  auto* owner = new BufferPtr(buffer);
  py::capsule base(owner, [](void* p) { delete static_cast<BufferPtr*>(p); });
  return py::array(ToNumpy(dtype), shape, buffer->data(), base);
}

py::dict ObsViews(const std::vector<BufferPtr>& buffers, const TaskSpec& spec, int64_t rows) {
  py::dict d;
  for (size_t f = 0; f < spec.obs_fields.size(); ++f) {
    const FieldSpec& field = spec.obs_fields[f];
    d[py::str(field.name)] = View(buffers[f], field.dtype, rows, field.shape);
  }
  return d;
}

// Checks that `obj` is a C-contiguous 1-D integer ndarray (or a sequence that
// NumPy turns into one) of `length` entries (-1: any). Returns the array.
py::array IntegerVector(py::handle obj, const char* name, int64_t length) {
  if (obj.is_none()) throw TypeError(std::string(name) + " must be an integer array, got None");
  py::array arr;
  if (py::isinstance<py::array>(obj)) {
    arr = py::reinterpret_borrow<py::array>(obj);
  } else {
    arr = py::module_::import("numpy").attr("asarray")(obj);
    if (arr.size() == 0) arr = py::array_t<int64_t>(0);
  }
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw TypeError(std::string(name) + " must have an integer dtype, got " +
                    py::str(arr.dtype()).cast<std::string>());
  }
  if (arr.ndim() != 1) {
    throw ValueError(std::string(name) + " must be 1-D, got shape " +
                     py::str(py::tuple(arr.attr("shape"))).cast<std::string>());
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
  const char kind = arr.dtype().kind();
  switch (arr.itemsize()) {
    case 1:
      return kind == 'i' ? &ReadAs<int8_t> : &ReadAs<uint8_t>;
    case 2:
      return kind == 'i' ? &ReadAs<int16_t> : &ReadAs<uint16_t>;
    case 4:
      return kind == 'i' ? &ReadAs<int32_t> : &ReadAs<uint32_t>;
    default:
      return kind == 'i' ? &ReadAs<int64_t> : &ReadAs<uint64_t>;
  }
}

// Copies an integer array into int64, checking every entry is in [0, limit).
std::vector<int64_t> ReadIds(const py::array& arr, const char* name, int64_t limit,
                             bool unique) {
  const int64_t n = arr.shape(0);
  std::vector<int64_t> out(n);
  const Reader read = ReaderFor(arr);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = read(arr.data(), i);
    if (out[i] < 0 || out[i] >= limit) {
      throw ValueError(std::string(name) + "[" + std::to_string(i) + "] = " +
                       py::str(arr[py::int_(i)]).cast<std::string>() + " is out of range [0, " +
                       std::to_string(limit) + ")");
    }
  }
  if (unique) {
    std::vector<bool> seen(limit, false);
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

// State ids: any int64 value is well-formed; liveness is the store's check.
// An int64 array (what snapshot and simulate return) is read in place.
class StateIds {
 public:
  StateIds(py::handle obj, const char* name, int64_t length) {
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
  const int64_t* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  py::array array_;  // keeps the caller's memory alive while we read it
  std::vector<int64_t> copy_;
  const int64_t* data_ = nullptr;
  int64_t size_ = 0;
};

// Converts actions into `dst` (int32) and checks each is in [0, num_actions).
// Runs without the GIL: it touches only the array's memory, which the caller
// keeps alive.
void ConvertActions(const void* data, Reader read, int64_t n, int32_t num_actions,
                    int32_t* dst) {
  int64_t bad = -1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = read(data, i);
    dst[i] = static_cast<int32_t>(a);
    if (a < 0 || a >= num_actions) bad = bad < 0 ? i : bad;
  }
  if (bad >= 0) {
    throw ValueError("actions[" + std::to_string(bad) + "] = " +
                     std::to_string(read(data, bad)) + " is out of range [0, " +
                     std::to_string(num_actions) + ")");
  }
}

class PyPool {
 public:
  PyPool(std::unique_ptr<PoolBase> pool) : pool_(std::move(pool)) {
    const TaskSpec& spec = pool_->spec();
    const BatchArrays& live = pool_->live();
    const int64_t n = pool_->num_envs();
    obs_ = ObsViews(live.obs, spec, n);
    final_obs_ = ObsViews(live.final_obs, spec, n);
    reward_ = View(live.reward, DType::kFloat32, n, {});
    terminated_ = View(live.terminated, DType::kBool, n, {});
    truncated_ = View(live.truncated, DType::kBool, n, {});
    info_["final_obs"] = final_obs_;
    info_["episode_return"] = View(live.episode_return, DType::kFloat64, n, {});
    info_["episode_length"] = View(live.episode_length, DType::kInt32, n, {});
    step_result_ = py::make_tuple(obs_, reward_, terminated_, truncated_, info_);
    actions_.resize(n);
    if (AsyncRunner* async = pool_->async()) {
      const int64_t b = async->batch_size();
      for (int64_t s = 0; s < async->num_slots(); ++s) {
        const BatchArrays& a = async->slot(s);
        py::dict info;
        info["final_obs"] = ObsViews(a.final_obs, spec, b);
        info["episode_return"] = View(a.episode_return, DType::kFloat64, b, {});
        info["episode_length"] = View(a.episode_length, DType::kInt32, b, {});
        info["env_id"] = View(async->env_ids(s), DType::kInt32, b, {});
        recv_results_.push_back(py::make_tuple(
            ObsViews(a.obs, spec, b), View(a.reward, DType::kFloat32, b, {}),
            View(a.terminated, DType::kBool, b, {}), View(a.truncated, DType::kBool, b, {}),
            info));
      }
    }
  }

  ~PyPool() {
    py::gil_scoped_release release;
    pool_.reset();
  }

  py::tuple Step(py::handle actions, py::object out) {
    if (pool_->is_async()) {
      throw ValueError("this pool is asynchronous (batch_size < num_envs): use send() and recv()");
    }
    py::array arr = IntegerVector(actions, "actions", pool_->num_envs());
    const Reader read = ReaderFor(arr);
    const void* data = arr.data();
    const bool direct = arr.dtype().kind() == 'i' && arr.itemsize() == 4;
    // The usual path writes the pool's own buffers through pointers built once;
    // only out= builds a redirected copy.
    const Targets* targets = &pool_->live_targets();
    Targets redirected;
    py::tuple result = step_result_;
    if (!out.is_none()) {
      redirected = *targets;
      result = RedirectOutputs(out, redirected);
      targets = &redirected;
    }
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(pool_->mutex());
      CheckOpen();
      const int32_t* a = static_cast<const int32_t*>(data);
      if (direct) {
        CheckActionRange(a, pool_->num_envs());
      } else {
        ConvertActions(data, read, pool_->num_envs(), pool_->spec().num_actions, actions_.data());
        a = actions_.data();
      }
      pool_->Step(a, *targets);
    }
    return result;
  }

  void Send(py::handle actions, py::handle env_ids) {
    if (!pool_->is_async()) {
      throw ValueError("send() needs an asynchronous pool: make(..., batch_size=B) with B < num_envs");
    }
    std::vector<int64_t> envs = ReadIds(IntegerVector(env_ids, "env_ids", -1), "env_ids",
                                        pool_->num_envs(), /*unique=*/true);
    const int64_t k = static_cast<int64_t>(envs.size());
    py::array arr = IntegerVector(actions, "actions", k);
    const Reader read = ReaderFor(arr);
    const void* data = arr.data();
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    CheckOpen();
    std::vector<int32_t> a(k);
    ConvertActions(data, read, k, pool_->spec().num_actions, a.data());
    pool_->async()->Send(a.data(), envs.data(), k);
  }

  py::tuple Recv() {
    if (!pool_->is_async()) {
      throw ValueError("recv() needs an asynchronous pool: make(..., batch_size=B) with B < num_envs");
    }
    int64_t slot;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(pool_->mutex());
      CheckOpen();
      slot = pool_->async()->Recv();
    }
    return recv_results_[slot];
  }

  void Reset(py::object env_ids, py::object seeds, py::object instances) {
    std::vector<int64_t> ids = AllOrIds(env_ids, "env_ids");
    const int64_t k = static_cast<int64_t>(ids.size());
    std::vector<uint64_t> seed_values;
    if (!seeds.is_none()) {
      py::sequence seq = seeds;
      if (static_cast<int64_t>(py::len(seq)) != k) {
        throw ValueError("got " + std::to_string(py::len(seq)) + " seeds for " +
                         std::to_string(k) + " envs");
      }
      for (auto s : seq) seed_values.push_back(s.cast<uint64_t>());
    }
    InstanceArrays inst;
    std::vector<py::array> keep_alive;
    const TaskSpec& spec = pool_->spec();
    if (!instances.is_none()) {
      py::dict d = instances;
      for (const auto& field : spec.instance_fields) {
        py::array arr = d[py::str(field.name)];
        if (arr.dtype().char_() != static_cast<char>(field.dtype) ||
            !(arr.flags() & py::array::c_style) || arr.ndim() != 1 + (int)field.shape.size() ||
            arr.shape(0) != k) {
          throw ValueError("instance field '" + field.name + "' has the wrong dtype or shape");
        }
        for (size_t d2 = 0; d2 < field.shape.size(); ++d2) {
          if (arr.shape(d2 + 1) != field.shape[d2]) {
            throw ValueError("instance field '" + field.name + "' has the wrong shape");
          }
        }
        inst.fields.push_back(static_cast<const uint8_t*>(arr.data()));
        inst.row_bytes.push_back(field.RowBytes());
        keep_alive.push_back(arr);
      }
    }
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    CheckOpen();
    pool_->CheckNotInFlight(ids.data(), k);
    pool_->Reset(ids.data(), k, seed_values.empty() ? nullptr : seed_values.data(),
                 instances.is_none() ? nullptr : &inst);
  }

  py::array_t<int64_t> Snapshot(py::object env_ids) {
    std::vector<int64_t> ids = AllOrIds(env_ids, "env_ids", /*unique=*/false);
    py::array_t<int64_t> out(static_cast<py::ssize_t>(ids.size()));
    int64_t* dst = out.mutable_data();
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(pool_->mutex());
      CheckOpen();
      pool_->CheckNotInFlight(ids.data(), static_cast<int64_t>(ids.size()));
      pool_->Snapshot(ids.data(), static_cast<int64_t>(ids.size()), dst);
    }
    return out;
  }

  void Restore(py::object state_ids, py::object env_ids) {
    std::vector<int64_t> envs = AllOrIds(env_ids, "env_ids");
    StateIds states(state_ids, "state_ids", -1);
    if (states.size() != static_cast<int64_t>(envs.size())) {
      throw ValueError("state_ids has " + std::to_string(states.size()) + " entries but " +
                       (env_ids.is_none() ? "the pool has " + std::to_string(envs.size()) +
                                                " envs (pass env_ids to restore a subset)"
                                          : "env_ids has " + std::to_string(envs.size())));
    }
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    CheckOpen();
    pool_->CheckNotInFlight(envs.data(), static_cast<int64_t>(envs.size()));
    pool_->CheckStateIds(states.data(), states.size());
    pool_->Restore(states.data(), envs.data(), states.size());
  }

  py::tuple Simulate(py::object state_ids, py::handle actions) {
    StateIds states(state_ids, "state_ids", -1);
    const int64_t k = states.size();
    py::array arr = IntegerVector(actions, "actions", k);
    const Reader read = ReaderFor(arr);
    const void* data = arr.data();
    py::array_t<int64_t> new_ids(static_cast<py::ssize_t>(k));
    int64_t* dst = new_ids.mutable_data();
    BatchArrays sim;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(pool_->mutex());
      CheckOpen();
      std::unique_ptr<int32_t[]> a(new int32_t[k]);  // no zero-fill: every entry is written
      ConvertActions(data, read, k, pool_->spec().num_actions, a.get());
      pool_->CheckStateIds(states.data(), k);
      pool_->Simulate(states.data(), a.get(), k, dst);
      sim = pool_->sim();  // shared references: these buffers hold this call's rows
    }
    const TaskSpec& spec = pool_->spec();
    return py::make_tuple(ObsViews(sim.obs, spec, k), View(sim.reward, DType::kFloat32, k, {}),
                          View(sim.terminated, DType::kBool, k, {}),
                          View(sim.truncated, DType::kBool, k, {}), new_ids);
  }

  void Release(py::object state_ids, bool missing_ok) {
    StateIds states(state_ids, "state_ids", -1);
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    CheckOpen();
    pool_->Release(states.data(), states.size(), missing_ok);
  }

  py::bytes ExportStates(py::object state_ids) {
    StateIds states(state_ids, "state_ids", -1);
    std::string blob;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(pool_->mutex());
      CheckOpen();
      pool_->CheckStateIds(states.data(), states.size());
      blob = pool_->ExportStates(states.data(), states.size());
    }
    return py::bytes(blob);
  }

  py::array_t<int64_t> ImportStates(py::bytes data) {
    std::string blob = data;
    std::vector<int64_t> ids;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(pool_->mutex());
      CheckOpen();
      ids = pool_->ImportStates(blob);
    }
    py::array_t<int64_t> out(static_cast<py::ssize_t>(ids.size()));
    std::copy(ids.begin(), ids.end(), out.mutable_data());
    return out;
  }

  std::string Render(int64_t env_id) {
    if (env_id < 0 || env_id >= pool_->num_envs()) {
      throw ValueError("env_id " + std::to_string(env_id) + " is out of range [0, " +
                       std::to_string(pool_->num_envs()) + ")");
    }
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    CheckOpen();
    pool_->CheckNotInFlight(&env_id, 1);
    return pool_->Render(env_id);
  }

  void Close() {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    pool_->Close();
  }

  // Counters read under the lock so they are consistent with finished calls.
  template <class F>
  auto Locked(F&& f) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    return f();
  }

  PoolBase& pool() { return *pool_; }
  py::dict obs() const { return obs_; }
  py::tuple step_result() const { return step_result_; }

 private:
  // step(actions, out={...}): points `targets` at the caller's arrays for the
  // keys given (observation fields, "reward", "terminated", "truncated") and
  // returns the result tuple built from them. Checked fully before use.
  py::tuple RedirectOutputs(py::object out, Targets& targets) {
    if (!py::isinstance<py::dict>(out)) throw TypeError("out must be a dict of arrays");
    const TaskSpec& spec = pool_->spec();
    const int64_t n = pool_->num_envs();
    py::dict obs = obs_.attr("copy")();  // engine views for fields not given
    py::array reward = reward_, terminated = terminated_, truncated = truncated_;
    for (auto item : py::reinterpret_borrow<py::dict>(out)) {
      const std::string key = py::str(item.first);
      int field = -1;
      for (size_t f = 0; f < spec.obs_fields.size(); ++f) {
        if (spec.obs_fields[f].name == key) field = static_cast<int>(f);
      }
      DType dtype;
      std::vector<int64_t> row_shape;
      if (field >= 0) {
        dtype = spec.obs_fields[field].dtype;
        row_shape = spec.obs_fields[field].shape;
      } else if (key == "reward") {
        dtype = DType::kFloat32;
      } else if (key == "terminated" || key == "truncated") {
        dtype = DType::kBool;
      } else {
        std::string names;
        for (const auto& f : spec.obs_fields) names += f.name + ", ";
        throw ValueError("out has unknown key '" + key + "'; expected some of: " + names +
                         "reward, terminated, truncated");
      }
      if (!py::isinstance<py::array>(item.second)) {
        throw TypeError("out['" + key + "'] must be a numpy array");
      }
      py::array arr = py::reinterpret_borrow<py::array>(item.second);
      if (arr.dtype().char_() != static_cast<char>(dtype) ||
          arr.dtype().itemsize() != DTypeSize(dtype)) {
        throw TypeError("out['" + key + "'] must have dtype " +
                        py::str(ToNumpy(dtype)).cast<std::string>() + ", got " +
                        py::str(arr.dtype()).cast<std::string>());
      }
      bool shape_ok = arr.ndim() == static_cast<py::ssize_t>(row_shape.size() + 1) &&
                      arr.shape(0) == n;
      for (size_t d = 0; shape_ok && d < row_shape.size(); ++d) {
        shape_ok = arr.shape(d + 1) == row_shape[d];
      }
      if (!shape_ok) {
        std::string want = "(" + std::to_string(n);
        for (int64_t d : row_shape) want += ", " + std::to_string(d);
        throw ValueError("out['" + key + "'] must have shape " + want + "), got " +
                         py::str(py::tuple(arr.attr("shape"))).cast<std::string>());
      }
      if (!(arr.flags() & py::array::c_style)) {
        throw ValueError("out['" + key + "'] must be C-contiguous");
      }
      if (!arr.writeable()) throw ValueError("out['" + key + "'] is read-only");
      uint8_t* ptr = static_cast<uint8_t*>(arr.mutable_data());
      if (field >= 0) {
        targets.obs[field] = ptr;
        obs[py::str(key)] = arr;
      } else if (key == "reward") {
        targets.reward = reinterpret_cast<float*>(ptr);
        reward = arr;
      } else if (key == "terminated") {
        targets.terminated = reinterpret_cast<bool*>(ptr);
        terminated = arr;
      } else {
        targets.truncated = reinterpret_cast<bool*>(ptr);
        truncated = arr;
      }
    }
    return py::make_tuple(obs, reward, terminated, truncated, info_);
  }

  void CheckOpen() const {
    if (pool_->closed()) throw ClosedError("this pool is closed");
  }

  void CheckActionRange(const int32_t* a, int64_t n) const {
    const int32_t num_actions = pool_->spec().num_actions;
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= static_cast<uint32_t>(a[i]) < static_cast<uint32_t>(num_actions);
    if (!ok) ConvertActions(a, &ReadAs<int32_t>, n, num_actions, actions_.data());
  }

  std::vector<int64_t> AllOrIds(py::object env_ids, const char* name, bool unique = true) {
    const int64_t n = pool_->num_envs();
    if (env_ids.is_none()) {
      std::vector<int64_t> all(n);
      for (int64_t i = 0; i < n; ++i) all[i] = i;
      return all;
    }
    return ReadIds(IntegerVector(env_ids, name, -1), name, n, unique);
  }

  std::unique_ptr<PoolBase> pool_;
  py::dict obs_, final_obs_, info_;
  py::array reward_, terminated_, truncated_;
  py::tuple step_result_;
  std::vector<py::tuple> recv_results_;  // one cached result per async ring slot
  mutable std::vector<int32_t> actions_;  // scratch, used only under the pool mutex
};

py::object FieldsToPython(const std::vector<FieldSpec>& fields) {
  py::list out;
  for (const auto& f : fields) {
    out.append(py::make_tuple(f.name, ToNumpy(f.dtype), py::tuple(py::cast(f.shape)),
                              py::cast(f.low), py::cast(f.high)));
  }
  return out;
}

std::unique_ptr<PyPool> Make(const std::string& task_id, int64_t num_envs, int num_threads,
                             uint64_t seed, int64_t max_snapshots, int64_t batch_size,
                             py::dict task_kwargs) {
  if (batch_size < 1 || batch_size > num_envs) {
    throw ValueError("batch_size must be in [1, num_envs], got " + std::to_string(batch_size));
  }
  if (num_envs < 1) throw ValueError("num_envs must be >= 1, got " + std::to_string(num_envs));
  if (num_envs > (int64_t{1} << 31)) throw ValueError("num_envs must be < 2**31");
  if (num_threads < 1 || num_threads > 1024) {
    throw ValueError("num_threads must be in [1, 1024], got " + std::to_string(num_threads));
  }
  if (max_snapshots < 0) throw ValueError("max_snapshots must be >= 0");
  Kwargs kwargs;
  for (auto item : task_kwargs) {
    const std::string key = py::str(item.first);
    py::handle v = item.second;
    if (py::isinstance<py::bool_>(v)) {
      kwargs.Set(key, v.cast<bool>());
    } else if (py::isinstance<py::int_>(v)) {
      kwargs.Set(key, v.cast<int64_t>());
    } else if (py::isinstance<py::float_>(v)) {
      kwargs.Set(key, v.cast<double>());
    } else if (py::isinstance<py::str>(v)) {
      kwargs.Set(key, v.cast<std::string>());
    } else {
      throw TypeError("task kwarg '" + key + "' must be a bool, int, float or str, got " +
                      py::str(py::type::of(v).attr("__name__")).cast<std::string>());
    }
  }
  PoolOptions options{num_envs, num_threads, seed, max_snapshots, batch_size};
  std::unique_ptr<PoolBase> pool;
  {
    py::gil_scoped_release release;
    pool = MakePool(task_id, kwargs, options);
  }
  return std::make_unique<PyPool>(std::move(pool));
}

}  // namespace
}  // namespace pyenvpool

PYBIND11_MODULE(_core, m) {
  using namespace pyenvpool;
  m.doc() = "pyenvpool engine (C++17). Use the pyenvpool package, not this module.";

  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const KeyError& e) {
      PyErr_SetObject(PyExc_KeyError, py::str(e.what()).ptr());
    } catch (const ClosedError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  // Deliberately leaked: the type must outlive interpreter finalisation.
  static auto* capacity_error =
      new py::exception<SnapshotCapacityError>(m, "SnapshotCapacityError", PyExc_RuntimeError);
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const SnapshotCapacityError& e) {
      PyErr_SetString(capacity_error->ptr(), e.what());
    }
  });

  m.def("list_tasks", [] {
    std::vector<std::string> ids;
    for (const auto& entry : RegisteredTasks()) ids.emplace_back(entry.id);
    return ids;
  });
  m.def("hardware_concurrency", [] { return std::thread::hardware_concurrency(); });
  m.def("make", &Make, py::arg("task_id"), py::arg("num_envs"), py::arg("num_threads"),
        py::arg("seed"), py::arg("max_snapshots"), py::arg("batch_size"), py::arg("task_kwargs"));

  py::class_<PyPool>(m, "Pool")
      .def("step", &PyPool::Step, py::arg("actions"), py::arg("out") = py::none())
      .def("send", &PyPool::Send, py::arg("actions"), py::arg("env_ids"))
      .def("recv", &PyPool::Recv)
      .def("reset", &PyPool::Reset, py::arg("env_ids"), py::arg("seeds"), py::arg("instances"))
      .def("snapshot", &PyPool::Snapshot, py::arg("env_ids"))
      .def("restore", &PyPool::Restore, py::arg("state_ids"), py::arg("env_ids"))
      .def("simulate", &PyPool::Simulate, py::arg("state_ids"), py::arg("actions"))
      .def("release", &PyPool::Release, py::arg("state_ids"), py::arg("missing_ok"))
      .def("render", &PyPool::Render, py::arg("env_id"))
      .def("export_states", &PyPool::ExportStates, py::arg("state_ids"))
      .def("import_states", &PyPool::ImportStates, py::arg("data"))
      .def("close", &PyPool::Close)
      .def_property_readonly("obs", &PyPool::obs)
      .def_property_readonly("step_result", &PyPool::step_result)
      .def_property_readonly("task_id", [](PyPool& p) { return p.pool().task_id(); })
      .def_property_readonly("config", [](PyPool& p) { return p.pool().config(); })
      .def_property_readonly("num_envs", [](PyPool& p) { return p.pool().num_envs(); })
      .def_property_readonly("num_threads", [](PyPool& p) { return p.pool().num_threads(); })
      .def_property_readonly("batch_size", [](PyPool& p) { return p.pool().batch_size(); })
      .def_property_readonly("num_actions",
                             [](PyPool& p) { return p.pool().spec().num_actions; })
      .def_property_readonly("obs_fields",
                             [](PyPool& p) { return FieldsToPython(p.pool().spec().obs_fields); })
      .def_property_readonly(
          "instance_fields",
          [](PyPool& p) { return FieldsToPython(p.pool().spec().instance_fields); })
      .def_property_readonly("closed", [](PyPool& p) { return p.pool().closed(); })
      .def_property_readonly("max_snapshots", [](PyPool& p) { return p.pool().max_snapshots(); })
      .def_property_readonly("state_bytes", [](PyPool& p) { return p.pool().state_bytes(); })
      .def_property_readonly(
          "snapshot_count",
          [](PyPool& p) { return p.Locked([&] { return p.pool().snapshot_count(); }); })
      .def_property_readonly(
          "snapshot_bytes",
          [](PyPool& p) { return p.Locked([&] { return p.pool().snapshot_bytes(); }); });
}
