// A libFuzzer driver for one task, shared by every csrc/fuzz/fuzz_<task>.cc.
//
// An input is read as a little program:
//   - a seed for the env's RNG;
//   - for tasks with instance fields, a flag: random reset, or an instance
//     whose fields are carved from the input (bool fields normalised to 0/1,
//     everything else raw bytes, so values are arbitrary, NaN and huge ones
//     included);
//   - a stream of actions: discrete components are arbitrary int32 values
//     reduced into their range (the bindings reject out-of-range ones before
//     the engine); Box elements are arbitrary float32 bit patterns, huge and
//     out-of-range values included, with NaN and infinity (which the bindings
//     reject) replaced by +-FLT_MAX.
// Each step must keep the task's invariants: the reward is finite, the
// observation is within the spec's bounds, and a snapshot copy of the state
// steps exactly like the original. A violation traps, so the fuzzer reports
// it with its input.
// Tasks that draw rgb frames draw the first state, the final states of the
// first few episodes and the last state, and also the input's first bytes
// read as a State (what import_states could hand them, if CheckState passes
// it): every pixel must be painted, and nothing written outside the frame
// (which the sanitizers check).
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/errors.h"
#include "core/task.h"

namespace pyenvpool::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  template <class T>
  T Take() {
    T value{};
    uint8_t bytes[sizeof(T)] = {};
    for (size_t i = 0; i < sizeof(T) && pos_ < size_; ++i) bytes[i] = data_[pos_++];
    std::memcpy(&value, bytes, sizeof(T));
    return value;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

inline void Check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Rows {
  explicit Rows(const std::vector<FieldSpec>& fields) {
    for (const auto& f : fields) {
      storage.emplace_back(static_cast<size_t>(f.RowBytes()));
      pointers.push_back(storage.back().data());
      row_bytes.push_back(f.RowBytes());
    }
  }
  ObsRow Row() const { return ObsRow{pointers.data(), row_bytes.data(), 0}; }
  std::vector<std::vector<uint8_t>> storage;
  std::vector<uint8_t*> pointers;
  std::vector<int64_t> row_bytes;
};

// One action row for `spec`, read from the input into `row` (4-byte scalars),
// in the form the task's Step takes.
template <class Task>
ActionOf<Task> TakeAction(Input& in, const ActionSpec& spec, std::vector<uint32_t>& row) {
  const int64_t n = spec.NumElements();
  row.resize(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    const uint32_t bits = in.Take<uint32_t>();
    if (spec.kind == ActionSpec::Kind::kBox) {
      float v;
      std::memcpy(&v, &bits, 4);
      if (!std::isfinite(v)) v = (bits >> 31) ? -FLT_MAX : FLT_MAX;
      std::memcpy(&row[e], &v, 4);
    } else {
      row[e] = bits % static_cast<uint32_t>(spec.nvec[spec.nvec.size() == 1 ? 0 : e]);
    }
  }
  return ActionAt<Task>(row.data(), 0, n);
}

template <class T>
bool InBounds(const uint8_t* row, const FieldSpec& f) {
  const int64_t n = f.NumElements();
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, row + i * sizeof(T), sizeof(T));
    const double low = f.low.size() == 1 ? f.low[0] : f.low[i];
    const double high = f.high.size() == 1 ? f.high[0] : f.high[i];
    const double x = static_cast<double>(v);
    if (std::isnan(x)) return false;
    // Unbounded dimensions may hold anything finite or infinite.
    if ((std::isfinite(low) && x < low) || (std::isfinite(high) && x > high)) return false;
  }
  return true;
}

inline void CheckObs(const Rows& rows, const std::vector<FieldSpec>& fields, bool check_bounds) {
  for (size_t f = 0; f < fields.size(); ++f) {
    const uint8_t* row = rows.storage[f].data();
    switch (fields[f].dtype) {
      case DType::kBool:
        for (int64_t i = 0; i < fields[f].RowBytes(); ++i) Check(row[i] <= 1);
        break;
      case DType::kInt32:
        if (check_bounds) Check(InBounds<int32_t>(row, fields[f]));
        break;
      case DType::kFloat32:
        if (check_bounds) Check(InBounds<float>(row, fields[f]));
        break;
      default:
        break;
    }
  }
}

// Draws `s` twice, over two different backgrounds: the frames must be equal,
// so Draw painted every pixel, the same way both times.
template <class Task>
void CheckDraw(const Task& task, const typename Task::State& s) {
  if constexpr (HasDraw<Task>::value) {
    const FrameSize size = task.Frame();
    Check(size.height > 0 && size.width > 0);
    const size_t bytes = static_cast<size_t>(size.height) * static_cast<size_t>(size.width) * 3;
    std::vector<uint8_t> a(bytes, 0x00), b(bytes, 0xFF);
    Canvas canvas_a(a.data(), size.height, size.width), canvas_b(b.data(), size.height, size.width);
    task.Draw(s, canvas_a);
    task.Draw(s, canvas_b);
    Check(a == b);
  } else {
    (void)task, (void)s;
  }
}

// The input's first bytes (zero-padded) as a State, drawn if the task would
// import it.
template <class Task>
void CheckDrawRawState(const Task& task, const uint8_t* data, size_t size) {
  if constexpr (HasDraw<Task>::value) {
    typename Task::State raw;
    std::memset(static_cast<void*>(&raw), 0, sizeof(raw));
    std::memcpy(static_cast<void*>(&raw), data, std::min(size, sizeof(raw)));
    if constexpr (HasStateCheck<Task>::value) {
      if (!task.CheckState(raw).empty()) return;
    }
    CheckDraw(task, raw);
  } else {
    (void)task, (void)data, (void)size;
  }
}

// check_bounds: false for tasks whose state may legitimately leave the
// observation box before the step that ends the episode (CartPole's velocities).
// kwargs: the task's configuration (default: its defaults).
// finite_reward: false for tasks whose reward overflows to -inf for absurd
// (finite) actions exactly as the original does (the MuJoCo tasks' float32
// control cost); a NaN reward traps either way.
template <class Task>
int RunOne(const uint8_t* data, size_t size, bool check_bounds, Kwargs kwargs = Kwargs(),
           bool finite_reward = true) {
  Input in(data, size);
  Task task(kwargs);
  CheckDrawRawState(task, data, size);
  const TaskSpec spec = task.Spec();
  typename Task::State state;
  state.rng.Seed(in.Take<uint64_t>(), in.Take<uint8_t>());
  task.Reset(state);
  if (!spec.instance_fields.empty() && (in.Take<uint8_t>() & 1)) {
    std::vector<std::vector<uint8_t>> fields;
    std::vector<const uint8_t*> pointers;
    std::vector<int64_t> row_bytes;
    for (const auto& f : spec.instance_fields) {
      fields.emplace_back(static_cast<size_t>(f.RowBytes()));
      for (auto& byte : fields.back()) {
        byte = in.Take<uint8_t>();
        if (f.dtype == DType::kBool) byte &= 1;
      }
      pointers.push_back(fields.back().data());
      row_bytes.push_back(f.RowBytes());
    }
    try {
      LoadTaskInstance(task, state, InstanceRow{pointers.data(), row_bytes.data(), 0});
    } catch (const ValueError&) {
      return 0;  // rejected with a message: exactly what bad instances should get
    }
  }
  Rows obs(spec.obs_fields), copy_obs(spec.obs_fields);
  task.WriteObs(state, obs.Row());
  CheckObs(obs, spec.obs_fields, check_bounds);
  (void)RenderTaskState(task, state);
  CheckDraw(task, state);
  constexpr int kEpisodesDrawn = 2;  // drawing every episode end would slow fuzzing down
  int episodes = 0;
  std::vector<uint32_t> action_row;
  for (int steps = 0; !in.empty() && steps < 4096; ++steps) {
    const auto action = TakeAction<Task>(in, spec.action, action_row);
    typename Task::State copy = state;  // what a snapshot stores
    const StepResult r = task.Step(state, action);
    const StepResult rc = task.Step(copy, action);
    Check(finite_reward ? std::isfinite(r.reward) : !std::isnan(r.reward));
    Check(r.reward == rc.reward && r.terminated == rc.terminated && r.truncated == rc.truncated);
    task.WriteObs(state, obs.Row());
    task.WriteObs(copy, copy_obs.Row());
    for (size_t f = 0; f < obs.storage.size(); ++f) Check(obs.storage[f] == copy_obs.storage[f]);
    if (r.terminated || r.truncated) {
      if (episodes++ < kEpisodesDrawn) CheckDraw(task, state);
      task.Reset(state);
      task.WriteObs(state, obs.Row());
      CheckObs(obs, spec.obs_fields, check_bounds);
    } else {
      CheckObs(obs, spec.obs_fields, check_bounds);
    }
  }
  (void)RenderTaskState(task, state);
  CheckDraw(task, state);
  return 0;
}

}  // namespace pyenvpool::fuzz
