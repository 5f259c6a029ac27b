// The pybind11 module pyenvpool._core: make(), list_tasks(), the Pool class
// (py_pool.h) and the translation of engine errors into Python exceptions.
//
// make() is the one place the pool's arguments are checked; the Python
// package passes them through unchanged.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sched.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bindings/arrays.h"
#include "bindings/mujoco.h"
#include "bindings/py_pool.h"
#include "core/errors.h"
#include "registry.h"

namespace py = pybind11;

namespace pyenvpool::bind {
namespace {

// One thread per core this process may run on, at most one per env.
int DefaultNumThreads(int64_t num_envs) {
  int cores = 0;
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
#endif
  if (cores < 1) cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores < 1) cores = 1;
  return static_cast<int>(std::min<int64_t>(cores, num_envs));
}

Kwargs TaskKwargs(const py::dict& task_kwargs) {
  Kwargs kwargs;
  for (auto item : task_kwargs) {
    const std::string key = py::str(item.first);
    py::handle v = item.second;
    if (py::isinstance<py::bool_>(v)) {
      kwargs.Set(key, v.cast<bool>());
    } else if (py::isinstance<py::int_>(v)) {
      kwargs.Set(key, IntArgument(v, ("task kwarg '" + key + "'").c_str(),
                                  std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max()));
    } else if (py::isinstance<py::float_>(v)) {
      kwargs.Set(key, v.cast<double>());
    } else if (py::isinstance<py::str>(v)) {
      kwargs.Set(key, v.cast<std::string>());
    } else {
      throw TypeError("task kwarg '" + key + "' must be a bool, int, float or str, got " +
                      py::str(py::type::of(v).attr("__name__")).cast<std::string>());
    }
  }
  return kwargs;
}

// autoreset: True (same-step), False (disabled) or one of the mode names.
Autoreset AutoresetArgument(py::handle value) {
  if (py::isinstance<py::bool_>(value)) {
    return value.cast<bool>() ? Autoreset::kSameStep : Autoreset::kDisabled;
  }
  if (py::isinstance<py::str>(value)) {
    const std::string name = value.cast<std::string>();
    if (name == "same_step") return Autoreset::kSameStep;
    if (name == "next_step") return Autoreset::kNextStep;
    if (name == "disabled") return Autoreset::kDisabled;
  }
  throw ValueError("autoreset must be True, False, 'same_step', 'next_step' or 'disabled', got " +
                   py::repr(value).cast<std::string>());
}

std::unique_ptr<PyPool> Make(py::handle task_id, py::handle num_envs, py::handle num_threads,
                             py::handle seed, py::handle batch_size, py::handle max_snapshots,
                             py::handle autoreset, py::dict task_kwargs) {
  if (!py::isinstance<py::str>(task_id)) {
    throw TypeError("task_id must be a str, got " +
                    py::str(py::type::of(task_id).attr("__name__")).cast<std::string>());
  }
  PoolOptions options;
  options.num_envs = IntArgument(num_envs, "num_envs", 1, std::numeric_limits<int32_t>::max());
  options.num_threads = num_threads.is_none()
                            ? DefaultNumThreads(options.num_envs)
                            : static_cast<int>(IntArgument(num_threads, "num_threads", 1, 1024));
  options.seed = SeedArgument(seed, "seed");
  options.batch_size = batch_size.is_none()
                           ? options.num_envs
                           : IntArgument(batch_size, "batch_size", 1, options.num_envs);
  options.max_snapshots =
      max_snapshots.is_none()
          ? std::numeric_limits<int64_t>::max()
          : IntArgument(max_snapshots, "max_snapshots", 0, std::numeric_limits<int64_t>::max());
  options.autoreset = AutoresetArgument(autoreset);
  Kwargs kwargs = TaskKwargs(task_kwargs);
  const std::string id = task_id.cast<std::string>();
  std::unique_ptr<PoolBase> pool;
  {
    py::gil_scoped_release release;
    pool = MakePool(id, kwargs, options);
  }
  return std::make_unique<PyPool>(std::move(pool));
}

}  // namespace
}  // namespace pyenvpool::bind

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
  m.def("make", &bind::Make, py::arg("task_id"), py::arg("num_envs"), py::arg("num_threads"),
        py::arg("seed"), py::arg("batch_size"), py::arg("max_snapshots"), py::arg("autoreset"),
        py::arg("task_kwargs"));
  bind::RegisterPool(m);
#ifdef PYENVPOOL_WITH_MUJOCO
  bind::RegisterMujoco(m);
#endif
}
