// The planar walkers of Gymnasium v5, Hopper and Walker2d, as one class:
// hopper_v5.py and walker2d_v5.py step, reward, observe and reset the same
// way and differ only in the model and the health rule. Each task's header
// (hopper.h, walker2d.h) documents its env and supplies a `Model`:
//   kId, kFile, kMinChunk   the task's id, model file and chunk size
//   kNq, kNv, kNu           the model's sizes (checked when it loads)
//   Healthy(qpos, qvel)     Gymnasium's is_healthy with its default ranges
// See mujoco_locomotion.h for the physics state and the numerics.
#pragma once

#include "tasks/mujoco_locomotion.h"

namespace pyenvpool {

template <class Model>
class PlanarWalker {
 public:
  static constexpr const char* kId = Model::kId;
  static constexpr const char* kFile = Model::kFile;  // in pyenvpool/assets/mujoco
  static constexpr int64_t kMinChunk = Model::kMinChunk;
  using Action = const float*;
  static constexpr int kNq = Model::kNq, kNv = Model::kNv, kNu = Model::kNu;
  using Physics = mujoco::Physics<kNq, kNv, kNu>;

  struct State {
    Rng rng;
    int32_t elapsed_steps;
    double physics[Physics::kStateSize];
    double x_velocity, reward_forward, reward_ctrl, reward_survive;
  };

  explicit PlanarWalker(Kwargs& kwargs)
      : frame_skip_(static_cast<int>(kwargs.Int("frame_skip", 4, 1, 1000))),
        max_episode_steps_(static_cast<int32_t>(kwargs.Int("max_episode_steps", 1000, 1, 1 << 30))),
        forward_reward_weight_(kwargs.Float("forward_reward_weight", 1.0, -1e9, 1e9)),
        ctrl_cost_weight_(static_cast<float>(kwargs.Float("ctrl_cost_weight", 1e-3, -1e9, 1e9))),
        healthy_reward_(kwargs.Float("healthy_reward", 1.0, -1e9, 1e9)),
        terminate_when_unhealthy_(kwargs.Bool("terminate_when_unhealthy", true)),
        reset_noise_scale_(kwargs.Float("reset_noise_scale", 5e-3, 0.0, 1e3)),
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
        mujoco::InfoField("z_distance_from_origin"),
        mujoco::InfoField("x_velocity"),
        mujoco::InfoField("reward_forward"),
        mujoco::InfoField("reward_ctrl"),
        mujoco::InfoField("reward_survive"),
        mujoco::InfoField("qpos", {kNq}),
        mujoco::InfoField("qvel", {kNv}),
    };
    spec.instance_fields = Physics::InstanceFields();
    return spec;
  }

  void Reset(State& s) const {
    double qpos[kNq], qvel[kNv];
    physics_.NoisyQpos(s.rng, reset_noise_scale_, qpos);
    for (int i = 0; i < kNv; ++i) {
      qvel[i] = 0.0 + s.rng.Uniform(-reset_noise_scale_, reset_noise_scale_);
    }
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
    const bool healthy = Model::Healthy(s.physics + Physics::kQpos, s.physics + Physics::kQvel);
    s.reward_survive = (healthy ? 1.0 : 0.0) * healthy_reward_;
    const float ctrl_cost = mujoco::ControlCost<kNu>(ctrl_cost_weight_, action);
    s.reward_ctrl = -static_cast<double>(ctrl_cost);
    const double reward = (s.reward_forward + s.reward_survive) - static_cast<double>(ctrl_cost);
    s.elapsed_steps += 1;
    return {static_cast<float>(reward), !healthy && terminate_when_unhealthy_,
            s.elapsed_steps >= max_episode_steps_};
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    const double* qpos = s.physics + Physics::kQpos;
    const double* qvel = s.physics + Physics::kQvel;
    double* obs = row.Get<double>(0);
    for (int i = skip_x_; i < kNq; ++i) *obs++ = qpos[i];
    for (int i = 0; i < kNv; ++i) *obs++ = mujoco::Clip(qvel[i], -10.0, 10.0);
    *row.Get<double>(1) = qpos[0];
    *row.Get<double>(2) = qpos[1] - physics_.m()->qpos0[1];
    *row.Get<double>(3) = s.x_velocity;
    *row.Get<double>(4) = s.reward_forward;
    *row.Get<double>(5) = s.reward_ctrl;
    *row.Get<double>(6) = s.reward_survive;
    std::memcpy(row.Get<double>(7), qpos, sizeof(double) * kNq);
    std::memcpy(row.Get<double>(8), qvel, sizeof(double) * kNv);
  }

 private:
  void Start(State& s, const double* qpos, const double* qvel) const {
    physics_.Start(s.physics, qpos, qvel);
    s.elapsed_steps = 0;
    s.x_velocity = s.reward_forward = s.reward_ctrl = s.reward_survive = 0.0;
  }

  int frame_skip_;
  int32_t max_episode_steps_;
  double forward_reward_weight_;
  float ctrl_cost_weight_;
  double healthy_reward_;
  bool terminate_when_unhealthy_;
  double reset_noise_scale_;
  int skip_x_;  // 1: the observation leaves out qpos[0]
  Physics physics_;
};

}  // namespace pyenvpool
