// HalfCheetah-v5: Gymnasium 1.x's half_cheetah_v5.py (wrapped in TimeLimit(1000))
// on the same model (pyenvpool/assets/mujoco/half_cheetah.xml), stepped by
// the MuJoCo library of the `mujoco` extra. See mujoco_locomotion.h for how
// the physics state lives in State and why results are bit-exact.
//
// Action: Box(-1, 1, (6,)) float32 torques; out-of-range values reach MuJoCo,
// which clamps ctrl to ctrlrange, while the control cost uses them unclamped,
// as Gymnasium does. Each step runs mj_step frame_skip (5) times.
// Reward: forward_reward_weight * x_velocity - ctrl_cost_weight * sum(action^2).
// Never terminates; truncated at max_episode_steps (1000).
// Observation `obs` float64 [17]: qpos[1:] then qvel ([18] with
// exclude_current_positions_from_observation=False).
// Info fields: x_position, x_velocity, reward_forward, reward_ctrl (Gymnasium's
// info), and the full qpos [9] and qvel [9] (what reset(instances=...) takes).
// Reset: qpos = qpos0 + U(-0.1, 0.1), qvel = 0.1 * N(0, 1) (the distribution
// Gymnasium draws from; its numbers come from another generator).
#pragma once

#include "tasks/mujoco_locomotion.h"

namespace pyenvpool {

class HalfCheetah {
 public:
  static constexpr const char* kId = "HalfCheetah-v5";
  static constexpr const char* kFile = "half_cheetah.xml";  // in pyenvpool/assets/mujoco
  static constexpr int64_t kMinChunk = 4;  // a step costs ~60 us
  using Action = const float*;
  static constexpr int kNq = 9, kNv = 9, kNu = 6;
  using Physics = mujoco::Physics<kNq, kNv, kNu>;

  struct State {
    Rng rng;
    int32_t elapsed_steps;
    double physics[Physics::kStateSize];
    double x_velocity, reward_forward, reward_ctrl;
  };

  explicit HalfCheetah(Kwargs& kwargs)
      : frame_skip_(static_cast<int>(kwargs.Int("frame_skip", 5, 1, 1000))),
        max_episode_steps_(static_cast<int32_t>(kwargs.Int("max_episode_steps", 1000, 1, 1 << 30))),
        forward_reward_weight_(kwargs.Float("forward_reward_weight", 1.0, -1e9, 1e9)),
        ctrl_cost_weight_(static_cast<float>(kwargs.Float("ctrl_cost_weight", 0.1, -1e9, 1e9))),
        reset_noise_scale_(kwargs.Float("reset_noise_scale", 0.1, 0.0, 1e3)),
        skip_x_(kwargs.Bool("exclude_current_positions_from_observation", true) ? 1 : 0),
        physics_(kId, kFile, frame_skip_) {
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = physics_.Action();
    spec.obs_fields = {
        {"obs", DType::kFloat64, {kNq - skip_x_ + kNv}},
        mujoco::InfoField("x_position"),
        mujoco::InfoField("x_velocity"),
        mujoco::InfoField("reward_forward"),
        mujoco::InfoField("reward_ctrl"),
        mujoco::InfoField("qpos", {kNq}),
        mujoco::InfoField("qvel", {kNv}),
    };
    spec.instance_fields = Physics::InstanceFields();
    return spec;
  }

  void Reset(State& s) const {
    double qpos[kNq], qvel[kNv];
    physics_.NoisyQpos(s.rng, reset_noise_scale_, qpos);
    for (int i = 0; i < kNv; ++i) qvel[i] = 0.0 + reset_noise_scale_ * mujoco::StandardNormal(s.rng);
    Start(s, qpos, qvel);
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    Physics::CheckInstance(row);
    Start(s, row.Get<double>(0), row.Get<double>(1));
  }

  StepResult Step(State& s, const float* action) const {
    const double x_before = s.physics[Physics::kQpos];
    physics_.Advance(s.physics, action);
    const double x_after = s.physics[Physics::kQpos];
    s.x_velocity = (x_after - x_before) / physics_.dt();
    s.reward_forward = forward_reward_weight_ * s.x_velocity;
    const float ctrl_cost = mujoco::ControlCost<kNu>(ctrl_cost_weight_, action);
    s.reward_ctrl = -static_cast<double>(ctrl_cost);
    const double reward = s.reward_forward - static_cast<double>(ctrl_cost);
    s.elapsed_steps += 1;
    return {static_cast<float>(reward), false, s.elapsed_steps >= max_episode_steps_};
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    const double* qpos = s.physics + Physics::kQpos;
    const double* qvel = s.physics + Physics::kQvel;
    double* obs = row.Get<double>(0);
    for (int i = skip_x_; i < kNq; ++i) *obs++ = qpos[i];
    for (int i = 0; i < kNv; ++i) *obs++ = qvel[i];
    *row.Get<double>(1) = qpos[0];
    *row.Get<double>(2) = s.x_velocity;
    *row.Get<double>(3) = s.reward_forward;
    *row.Get<double>(4) = s.reward_ctrl;
    std::memcpy(row.Get<double>(5), qpos, sizeof(double) * kNq);
    std::memcpy(row.Get<double>(6), qvel, sizeof(double) * kNv);
  }

 private:
  // Gymnasium's reset after the noise: set_state runs mj_forward; the info
  // terms of a new episode are 0 (Gymnasium's reset info has x_position only).
  void Start(State& s, const double* qpos, const double* qvel) const {
    physics_.Start(s.physics, qpos, qvel);
    s.elapsed_steps = 0;
    s.x_velocity = s.reward_forward = s.reward_ctrl = 0.0;
  }

  int frame_skip_;
  int32_t max_episode_steps_;
  double forward_reward_weight_;
  float ctrl_cost_weight_;
  double reset_noise_scale_;
  int skip_x_;  // 1: the observation leaves out qpos[0]
  Physics physics_;
};

}  // namespace pyenvpool
