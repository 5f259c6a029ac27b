// PyPool's methods and its registration (see py_pool.h).
#include "bindings/py_pool.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "bindings/arrays.h"

namespace pyenvpool::bind {

PyPool::PyPool(std::unique_ptr<PoolBase> pool) : pool_(std::move(pool)) {
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
  info_terms_ = ObsViews(live.obs, spec, n, /*info=*/true);
  AddInfoTerms(info_, info_terms_, ObsViews(live.final_obs, spec, n, /*info=*/true));
  step_result_ = py::make_tuple(obs_, reward_, terminated_, truncated_, info_);
  if (AsyncRunner* async = pool_->async()) {
    const int64_t b = async->batch_size();
    for (int64_t s = 0; s < async->num_slots(); ++s) {
      const BatchArrays& a = async->slot(s);
      py::dict info;
      info["final_obs"] = ObsViews(a.final_obs, spec, b);
      info["episode_return"] = View(a.episode_return, DType::kFloat64, b, {});
      info["episode_length"] = View(a.episode_length, DType::kInt32, b, {});
      info["env_id"] = View(async->env_ids(s), DType::kInt32, b, {});
      AddInfoTerms(info, ObsViews(a.obs, spec, b, /*info=*/true),
                   ObsViews(a.final_obs, spec, b, /*info=*/true));
      recv_results_.push_back(py::make_tuple(
          ObsViews(a.obs, spec, b), View(a.reward, DType::kFloat32, b, {}),
          View(a.terminated, DType::kBool, b, {}), View(a.truncated, DType::kBool, b, {}), info));
    }
  }
}

void PyPool::AddInfoTerms(py::dict& info, const py::dict& terms, const py::dict& final_terms) {
  if (terms.empty()) return;
  for (auto item : terms) info[item.first] = item.second;
  info["final_info"] = final_terms;
}

PyPool::~PyPool() {
  py::gil_scoped_release release;
  pool_.reset();
}

py::tuple PyPool::Step(py::handle actions, py::object out) {
  if (pool_->is_async()) {
    throw ValueError("this pool is asynchronous (batch_size < num_envs): use send() and recv()");
  }
  ActionBatch batch(actions, pool_->spec().action, pool_->num_envs());
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
  Engine([&] { pool_->Step(batch.Check(), *targets); });
  return result;
}

void PyPool::Send(py::handle actions, py::handle env_ids) {
  if (!pool_->is_async()) {
    throw ValueError("send() needs an asynchronous pool: make(..., batch_size=B) with B < num_envs");
  }
  std::vector<int64_t> envs = EnvIds(env_ids, "env_ids", pool_->num_envs());
  const int64_t k = static_cast<int64_t>(envs.size());
  ActionBatch batch(actions, pool_->spec().action, k);
  Engine([&] { pool_->async()->Send(batch.Check(envs.data()), envs.data(), k); });
}

py::tuple PyPool::Recv() {
  if (!pool_->is_async()) {
    throw ValueError("recv() needs an asynchronous pool: make(..., batch_size=B) with B < num_envs");
  }
  const int64_t slot = Engine([&] { return pool_->async()->Recv(); });
  return recv_results_[slot];
}

void PyPool::Reset(py::handle env_ids, py::handle seed, py::handle instances) {
  std::vector<int64_t> ids = EnvIds(env_ids, "env_ids", pool_->num_envs());
  const int64_t k = static_cast<int64_t>(ids.size());
  bool seeded = false;
  std::vector<uint64_t> seeds = Seeds(seed, k, &seeded);
  std::vector<py::array> arrays;  // kept alive while the engine reads them
  InstanceArrays rows;
  if (!instances.is_none()) {
    arrays = CheckInstances(instances, pool_->spec(), pool_->task_id(), k);
    for (size_t f = 0; f < arrays.size(); ++f) {
      rows.fields.push_back(static_cast<const uint8_t*>(arrays[f].data()));
      rows.row_bytes.push_back(pool_->spec().instance_fields[f].RowBytes());
    }
  }
  Engine([&] {
    pool_->CheckNotInFlight(ids.data(), k);
    pool_->Reset(ids.data(), k, seeded ? seeds.data() : nullptr,
                 instances.is_none() ? nullptr : &rows);
  });
}

py::array_t<int64_t> PyPool::Snapshot(py::handle env_ids) {
  std::vector<int64_t> ids = EnvIds(env_ids, "env_ids", pool_->num_envs(), /*unique=*/false);
  const int64_t k = static_cast<int64_t>(ids.size());
  py::array_t<int64_t> out(static_cast<py::ssize_t>(k));
  int64_t* dst = out.mutable_data();
  Engine([&] {
    pool_->CheckNotInFlight(ids.data(), k);
    pool_->Snapshot(ids.data(), k, dst);
  });
  return out;
}

void PyPool::Restore(py::handle state_ids, py::handle env_ids) {
  std::vector<int64_t> envs = EnvIds(env_ids, "env_ids", pool_->num_envs());
  StateIds states(state_ids, "state_ids", -1);
  if (states.size() != static_cast<int64_t>(envs.size())) {
    throw ValueError("state_ids has " + std::to_string(states.size()) + " entries but " +
                     (env_ids.is_none() ? "the pool has " + std::to_string(envs.size()) +
                                              " envs (pass env_ids to restore a subset)"
                                        : "env_ids has " + std::to_string(envs.size())));
  }
  Engine([&] {
    pool_->CheckNotInFlight(envs.data(), static_cast<int64_t>(envs.size()));
    pool_->CheckStateIds(states.data(), states.size());
    pool_->Restore(states.data(), envs.data(), states.size());
  });
}

py::tuple PyPool::Simulate(py::handle state_ids, py::handle actions) {
  StateIds states(state_ids, "state_ids", -1);
  const int64_t k = states.size();
  ActionBatch batch(actions, pool_->spec().action, k);
  py::array_t<int64_t> new_ids(static_cast<py::ssize_t>(k));
  int64_t* dst = new_ids.mutable_data();
  BatchArrays sim = Engine([&] {
    const void* rows = batch.Check(states.data(), "state id");
    pool_->CheckStateIds(states.data(), k);
    pool_->Simulate(states.data(), rows, k, dst);
    return pool_->sim();  // shared references: these buffers hold this call's rows
  });
  const TaskSpec& spec = pool_->spec();
  return py::make_tuple(ObsViews(sim.obs, spec, k), View(sim.reward, DType::kFloat32, k, {}),
                        View(sim.terminated, DType::kBool, k, {}),
                        View(sim.truncated, DType::kBool, k, {}), new_ids);
}

void PyPool::Release(py::handle state_ids, bool missing_ok) {
  StateIds states(state_ids, "state_ids", -1);
  Engine([&] { pool_->Release(states.data(), states.size(), missing_ok); });
}

py::bytes PyPool::ExportStates(py::handle state_ids) {
  StateIds states(state_ids, "state_ids", -1);
  std::string blob = Engine([&] {
    pool_->CheckStateIds(states.data(), states.size());
    return pool_->ExportStates(states.data(), states.size());
  });
  return py::bytes(blob);
}

py::array_t<int64_t> PyPool::ImportStates(py::handle data) {
  if (!py::isinstance<py::bytes>(data) && !py::isinstance<py::bytearray>(data) &&
      !py::isinstance<py::memoryview>(data)) {
    throw TypeError("data must be bytes, got " +
                    py::str(py::type::of(data).attr("__name__")).cast<std::string>());
  }
  std::string blob = py::bytes(py::module_::import("builtins").attr("bytes")(data));
  std::vector<int64_t> ids = Engine([&] { return pool_->ImportStates(blob); });
  py::array_t<int64_t> out(static_cast<py::ssize_t>(ids.size()));
  std::copy(ids.begin(), ids.end(), out.mutable_data());
  return out;
}

py::object PyPool::Render(py::handle env_ids, const std::string& mode) {
  if (mode != "ansi" && mode != "rgb_array") {
    throw ValueError("mode must be 'ansi' or 'rgb_array', got '" + mode + "'");
  }
  const bool single = !env_ids.is_none() && PyIndex_Check(env_ids.ptr()) &&
                      !py::isinstance<py::array>(env_ids);
  std::vector<int64_t> ids;
  if (single) {
    ids.push_back(IntArgument(env_ids, "env_id", 0, pool_->num_envs() - 1));
  } else {
    ids = EnvIds(env_ids, "env_ids", pool_->num_envs(), /*unique=*/false);
  }
  const int64_t k = static_cast<int64_t>(ids.size());
  if (mode == "ansi") {
    std::vector<std::string> texts = Engine([&] {
      pool_->CheckNotInFlight(ids.data(), k);
      std::vector<std::string> out;
      for (int64_t id : ids) out.push_back(pool_->Render(id));
      return out;
    });
    if (single) return py::str(texts[0]);
    return py::cast(texts);
  }
  const FrameSize size = pool_->Frame();
  if (size.height == 0) throw ValueError(pool_->task_id() + " has no rgb_array rendering");
  py::array_t<uint8_t> frames({static_cast<py::ssize_t>(k), static_cast<py::ssize_t>(size.height),
                               static_cast<py::ssize_t>(size.width), py::ssize_t{3}});
  uint8_t* dst = frames.mutable_data();
  Engine([&] {
    pool_->CheckNotInFlight(ids.data(), k);
    pool_->RenderFrames(ids.data(), k, dst);
  });
  if (single) return frames[py::int_(0)];
  return std::move(frames);
}

void PyPool::Close() {
  py::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(pool_->mutex());
  pool_->Close();
}

py::tuple PyPool::RedirectOutputs(py::handle out, Targets& targets) {
  if (!py::isinstance<py::dict>(out)) throw TypeError("out must be a dict of arrays");
  const TaskSpec& spec = pool_->spec();
  const int64_t n = pool_->num_envs();
  py::dict obs = obs_.attr("copy")();  // engine views for fields not given
  py::array reward = reward_, terminated = terminated_, truncated = truncated_;
  for (auto item : py::reinterpret_borrow<py::dict>(out)) {
    const std::string key = py::str(item.first);
    int field = -1;
    for (size_t f = 0; f < spec.obs_fields.size(); ++f) {
      if (spec.obs_fields[f].name == key && !spec.obs_fields[f].info) field = static_cast<int>(f);
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
      for (const auto& f : spec.obs_fields) {
        if (!f.info) names += f.name + ", ";
      }
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
    bool shape_ok =
        arr.ndim() == static_cast<py::ssize_t>(row_shape.size() + 1) && arr.shape(0) == n;
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

namespace {

// (name, dtype, shape, low, high) per field; of obs_fields, only the
// observation fields (`info` false) or only the info fields (`info` true).
py::list FieldsToPython(const std::vector<FieldSpec>& fields, bool info = false) {
  py::list out;
  for (const auto& f : fields) {
    if (f.info != info) continue;
    out.append(py::make_tuple(f.name, ToNumpy(f.dtype), py::tuple(py::cast(f.shape)),
                              py::cast(f.low), py::cast(f.high)));
  }
  return out;
}

// (kind, nvec, shape, low, high) with kind "discrete", "multi_discrete" or "box".
py::tuple ActionToPython(const ActionSpec& a) {
  const char* kind = a.kind == ActionSpec::Kind::kDiscrete        ? "discrete"
                     : a.kind == ActionSpec::Kind::kMultiDiscrete ? "multi_discrete"
                                                                  : "box";
  return py::make_tuple(kind, py::cast(a.nvec), py::tuple(py::cast(a.shape)), py::cast(a.low),
                        py::cast(a.high));
}

}  // namespace

void RegisterPool(py::module_& m) {
  py::class_<PyPool>(m, "Pool")
      .def("step", &PyPool::Step, py::arg("actions"), py::arg("out") = py::none())
      .def("send", &PyPool::Send, py::arg("actions"), py::arg("env_ids"))
      .def("recv", &PyPool::Recv)
      .def("reset", &PyPool::Reset, py::arg("env_ids"), py::arg("seed"), py::arg("instances"))
      .def("snapshot", &PyPool::Snapshot, py::arg("env_ids"))
      .def("restore", &PyPool::Restore, py::arg("state_ids"), py::arg("env_ids"))
      .def("simulate", &PyPool::Simulate, py::arg("state_ids"), py::arg("actions"))
      .def("release", &PyPool::Release, py::arg("state_ids"), py::arg("missing_ok"))
      .def("render", &PyPool::Render, py::arg("env_ids"), py::arg("mode"))
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
      .def_property_readonly("autoreset", [](PyPool& p) { return p.pool().autoreset(); })
      .def_property_readonly("autoreset_mode",
                             [](PyPool& p) {
                               switch (p.pool().autoreset_mode()) {
                                 case Autoreset::kSameStep: return "same_step";
                                 case Autoreset::kNextStep: return "next_step";
                                 case Autoreset::kDisabled: break;
                               }
                               return "disabled";
                             })
      .def_property_readonly("action",
                             [](PyPool& p) { return ActionToPython(p.pool().spec().action); })
      .def_property_readonly("obs_fields",
                             [](PyPool& p) { return FieldsToPython(p.pool().spec().obs_fields); })
      .def_property_readonly(
          "info_fields",
          [](PyPool& p) { return FieldsToPython(p.pool().spec().obs_fields, /*info=*/true); })
      .def_property_readonly("info_terms", &PyPool::info_terms)
      .def_property_readonly(
          "instance_fields",
          [](PyPool& p) { return FieldsToPython(p.pool().spec().instance_fields); })
      .def_property_readonly("frame_shape",
                             [](PyPool& p) -> py::object {
                               const FrameSize size = p.pool().Frame();
                               if (size.height == 0) return py::none();
                               return py::make_tuple(size.height, size.width, 3);
                             })
      .def_property_readonly("closed", [](PyPool& p) { return p.pool().closed(); })
      .def_property_readonly("max_snapshots",
                             [](PyPool& p) -> py::object {
                               const int64_t cap = p.pool().max_snapshots();
                               if (cap == std::numeric_limits<int64_t>::max()) return py::none();
                               return py::int_(cap);
                             })
      .def_property_readonly("state_bytes", [](PyPool& p) { return p.pool().state_bytes(); })
      .def_property_readonly(
          "snapshot_count",
          [](PyPool& p) { return p.Locked([&] { return p.pool().snapshot_count(); }); })
      .def_property_readonly(
          "snapshot_bytes",
          [](PyPool& p) { return p.Locked([&] { return p.pool().snapshot_bytes(); }); });
}

}  // namespace pyenvpool::bind
