// NumPy arrays in and out of the engine: views over engine buffers, and the
// one place where every array argument is checked and converted.
//
// Everything here runs with the GIL held, except ActionBatch::Check, which
// touches only the memory of an array the caller keeps alive and so may run
// after the GIL is released. Checks raise the engine's errors (errors.h),
// which the module translates into TypeError / ValueError / KeyError.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "core/buffers.h"
#include "core/spec.h"

namespace pyenvpool::bind {

namespace py = pybind11;

py::dtype ToNumpy(DType dtype);

// A NumPy array over `buffer` ([rows, *row_shape] of `dtype`) that keeps the
// buffer alive: views never dangle.
py::array View(const BufferPtr& buffer, DType dtype, int64_t rows,
               const std::vector<int64_t>& row_shape);

// {field name: view} over one buffer per field of spec.obs_fields: the
// observation fields, or with `info` the info fields (FieldSpec::info).
py::dict ObsViews(const std::vector<BufferPtr>& buffers, const TaskSpec& spec, int64_t rows,
                  bool info = false);

// Checks that `obj` is a C-contiguous 1-D integer ndarray (or a sequence that
// NumPy turns into one) of `length` entries (-1: any). Returns the array.
py::array IntegerVector(py::handle obj, const char* name, int64_t length);

// Env indices: None means all of [0, num_envs); otherwise a 1-D integer array
// of indices in range (and distinct when `unique`). A scalar is refused.
std::vector<int64_t> EnvIds(py::handle env_ids, const char* name, int64_t num_envs,
                            bool unique = true);

// State ids: any int64 value is well-formed; liveness is the store's check.
// An int64 array (what snapshot and simulate return) is read in place.
class StateIds {
 public:
  StateIds(py::handle obj, const char* name, int64_t length);
  const int64_t* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  py::array array_;  // keeps the caller's memory alive while we read it
  std::vector<int64_t> copy_;
  const int64_t* data_ = nullptr;
  int64_t size_ = 0;
};

// k rows of actions for an ActionSpec, in the engine's layout ([k, elements]
// of int32 or float32). The constructor checks type, dtype and shape (GIL
// held); Check() checks every value -- discrete ranges, Box finiteness -- and
// converts into owned scratch memory when the caller's array is not already in
// the engine's layout. Check() needs no GIL. Errors name the row's env: env
// ids[j] when `ids` is given (send), else row j (step: the env; simulate: the
// state id's row).
class ActionBatch {
 public:
  ActionBatch(py::handle actions, const ActionSpec& spec, int64_t k);

  // Throws ValueError on a bad value, naming the row's owner: row_kind and
  // ids[j] (or j when ids is null, the rows of a live step being envs 0..k-1);
  // returns the rows to hand the engine.
  const void* Check(const int64_t* ids = nullptr, const char* row_kind = "env");

 private:
  void NoteLayout();

  const ActionSpec& spec_;
  int64_t k_;
  py::array array_;
  // The array's layout, noted with the GIL held (see NoteLayout).
  bool c_contiguous_ = false;
  bool int32_rows_ = false;  // int32, C-contiguous: checked in place
  bool uint64_ = false;
  int64_t (*read_)(const void*, int64_t) = nullptr;  // integer arrays: entry i as int64
  std::vector<uint8_t> scratch_;
};

// The instance arrays of reset(instances=...), checked against the task's
// instance fields (names, shapes, dtypes, finiteness, integer ranges) and
// converted to contiguous arrays of the fields' dtypes, one row per reset env.
std::vector<py::array> CheckInstances(py::handle instances, const TaskSpec& spec,
                                      const std::string& task_id, int64_t k);

// Seeds for k reset envs: None (nullopt: continue each env's stream), one int
// for all, or a sequence of k ints, each in [0, 2**64).
std::vector<uint64_t> Seeds(py::handle seed, int64_t k, bool* given);

// A Python int (not bool) in [low, high], else TypeError / ValueError naming it.
int64_t IntArgument(py::handle value, const char* name, int64_t low, int64_t high);
uint64_t SeedArgument(py::handle value, const char* name);

}  // namespace pyenvpool::bind
