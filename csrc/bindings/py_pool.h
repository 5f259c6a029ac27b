// PyPool: the Python face of one PoolBase (pyenvpool._core.Pool).
//
// Every method follows the same three steps:
// 1. check and convert its arguments with the GIL held (arrays.h); nothing is
//    written yet, so a bad argument leaves the pool as it was;
// 2. run the engine call inside Engine(): the GIL released, the pool's mutex
//    held (calls from several Python threads are serialised), a closed pool
//    refused;
// 3. return NumPy views of engine buffers. Each view holds its buffer, so it
//    never dangles; the live views are built once and the same objects are
//    returned by every step (no per-step allocation).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/pool.h"

namespace pyenvpool::bind {

namespace py = pybind11;

class PyPool {
 public:
  explicit PyPool(std::unique_ptr<PoolBase> pool);
  ~PyPool();

  py::tuple Step(py::handle actions, py::object out);
  void Send(py::handle actions, py::handle env_ids);
  py::tuple Recv();
  void Reset(py::handle env_ids, py::handle seed, py::handle instances);
  py::array_t<int64_t> Snapshot(py::handle env_ids);
  void Restore(py::handle state_ids, py::handle env_ids);
  py::tuple Simulate(py::handle state_ids, py::handle actions);
  void Release(py::handle state_ids, bool missing_ok);
  py::bytes ExportStates(py::handle state_ids);
  py::array_t<int64_t> ImportStates(py::handle data);
  // mode "ansi": text; "rgb_array": uint8 frames. An int env id gives one
  // picture, None or an array of ids a list (ansi) or a batch (rgb_array).
  py::object Render(py::handle env_ids, const std::string& mode);
  void Close();

  // Counters are read under the lock, so they agree with finished calls.
  template <class F>
  auto Locked(F&& f) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    return f();
  }

  PoolBase& pool() { return *pool_; }
  py::dict obs() const { return obs_; }
  // Views of the live info fields (FieldSpec::info): {name: [num_envs, ...]}.
  py::dict info_terms() const { return info_terms_; }
  py::tuple step_result() const { return step_result_; }

 private:
  // The preamble of every engine call: release the GIL, take the pool's
  // mutex, refuse a closed pool; then f().
  template <class F>
  auto Engine(F&& f) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(pool_->mutex());
    if (pool_->closed()) throw ClosedError("this pool is closed");
    return f();
  }

  // step(actions, out={...}): points `targets` at the caller's arrays for the
  // keys given and returns the result tuple built from them.
  py::tuple RedirectOutputs(py::handle out, Targets& targets);

  // A task's info fields in a step's info dict: each field's view at the top
  // level, and info["final_info"] with the views of the last step of an
  // episode (valid in the rows that ended, like final_obs).
  static void AddInfoTerms(py::dict& info, const py::dict& terms, const py::dict& final_terms);

  std::unique_ptr<PoolBase> pool_;
  py::dict obs_, final_obs_, info_, info_terms_;
  py::array reward_, terminated_, truncated_;
  py::tuple step_result_;
  std::vector<py::tuple> recv_results_;  // one cached result per async ring slot
};

// Registers pyenvpool._core.Pool.
void RegisterPool(py::module_& m);

}  // namespace pyenvpool::bind
