// Delay-v0: a trivial task whose step busy-waits a set number of microseconds.
//
// It exists to test and measure the engine itself: asynchronous recv() under
// uneven step costs (give some envs a large delay through
// reset(instances={"delay_us": ...})), and per-step overhead (delay 0).
// Observation `obs` float32 [1] = steps taken in the episode; every action
// gets reward 1; episodes are truncated after `max_episode_steps`.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class Delay {
 public:
  static constexpr const char* kId = "Delay-v0";
  static constexpr int64_t kMinChunk = 1;

  struct State {
    Rng rng;
    int32_t delay_us;
    int32_t elapsed_steps;
  };

  explicit Delay(Kwargs& kwargs) {
    delay_us_ = static_cast<int32_t>(kwargs.Int("delay_us", 0, 0, 10'000'000));
    max_episode_steps_ = static_cast<int32_t>(kwargs.Int("max_episode_steps", 100, 1, 1 << 30));
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(2);
    spec.obs_fields.push_back({"obs", DType::kFloat32, {1}, {0.0}, {double(max_episode_steps_)}});
    spec.instance_fields.push_back({"delay_us", DType::kInt32, {}});
    return spec;
  }

  void Reset(State& s) const {
    s.delay_us = delay_us_;
    s.elapsed_steps = 0;
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const int32_t delay = *row.Get<int32_t>(0);
    if (delay < 0) throw ValueError("'delay_us' must be >= 0");
    s.delay_us = delay;
    s.elapsed_steps = 0;
  }

  StepResult Step(State& s, int32_t /*action*/) const {
    if (s.delay_us > 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(s.delay_us);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    s.elapsed_steps += 1;
    StepResult r;
    r.reward = 1.0f;
    r.truncated = s.elapsed_steps >= max_episode_steps_;
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    *row.Get<float>(0) = static_cast<float>(s.elapsed_steps);
  }

  std::string Render(const State& s) const {
    return "step " + std::to_string(s.elapsed_steps) + ", delay " + std::to_string(s.delay_us) +
           " us";
  }

  FrameSize Frame() const { return {32, 256}; }

  // A bar of the steps taken out of max_episode_steps, and their number.
  void Draw(const State& s, Canvas& canvas) const {
    canvas.Fill({30, 30, 30});
    canvas.FillRect(4, 4, 252, 28, {70, 70, 70});
    const double done =
        std::clamp(static_cast<double>(s.elapsed_steps) / max_episode_steps_, 0.0, 1.0);
    canvas.FillRect(4, 4, 4 + 248 * done, 28, {60, 170, 90});
    const std::string steps = std::to_string(s.elapsed_steps);
    canvas.Text(8, 9, steps.c_str(), 3, {255, 255, 255});
  }

 private:
  int32_t delay_us_;
  int32_t max_episode_steps_;
};

}  // namespace pyenvpool
