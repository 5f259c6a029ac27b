// Walker2d-v5: Gymnasium 1.x's walker2d_v5.py (wrapped in TimeLimit(1000)) on
// the same model (pyenvpool/assets/mujoco/walker2d_v5.xml, RK4; v5 gives both
// feet the same friction). See mujoco_locomotion.h for the physics state and
// the numerics.
//
// Action: Box(-1, 1, (6,)) float32; MuJoCo clamps ctrl, the control cost
// uses the action as given. Each step runs mj_step frame_skip (4) times.
// Reward: forward_reward_weight * x_velocity + healthy_reward (only while
// healthy) - ctrl_cost_weight * sum(action^2).
// Healthy: z = qpos[1] strictly inside (0.8, 2.0) and angle = qpos[2]
// strictly inside (-1, 1). terminated when not healthy
// (terminate_when_unhealthy); truncated at max_episode_steps (1000).
// Observation `obs` float64 [17]: qpos[1:], then qvel clipped to [-10, 10].
// Info fields: x_position, z_distance_from_origin, x_velocity, reward_forward,
// reward_ctrl, reward_survive, qpos [9], qvel [9].
// Reset: qpos = qpos0 + U(-5e-3, 5e-3), qvel = U(-5e-3, 5e-3).
#pragma once

#include "tasks/mujoco_locomotion.h"

namespace pyenvpool {

class Walker2d {
 public:
  static constexpr const char* kId = "Walker2d-v5";
  static constexpr const char* kFile = "walker2d_v5.xml";  // in pyenvpool/assets/mujoco
  static constexpr int64_t kMinChunk = 2;  // a step costs ~250 us
  using Action = const float*;
  static constexpr int kNq = 9, kNv = 9, kNu = 6;
  using Physics = mujoco::Physics<kNq, kNv, kNu>;

  struct State {
    Rng rng;
    int32_t elapsed_steps;
    double physics[Physics::kStateSize];
    double x_velocity, reward_forward, reward_ctrl, reward_survive;
  };

  explicit Walker2d(Kwargs& kwargs)
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
    spec.instance_fields = mujoco::QposQvelFields(kNq, kNv);
    return spec;
  }

  void Reset(State& s) const {
    double qpos[kNq], qvel[kNv];
    const double* qpos0 = physics_.m()->qpos0;
    for (int i = 0; i < kNq; ++i) {
      qpos[i] = qpos0[i] + s.rng.Uniform(-reset_noise_scale_, reset_noise_scale_);
    }
    for (int i = 0; i < kNv; ++i) {
      qvel[i] = 0.0 + s.rng.Uniform(-reset_noise_scale_, reset_noise_scale_);
    }
    Start(s, qpos, qvel);
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const double* qpos = row.Get<double>(0);
    const double* qvel = row.Get<double>(1);
    mujoco::CheckFinite(qpos, kNq, "qpos");
    mujoco::CheckFinite(qvel, kNv, "qvel");
    Start(s, qpos, qvel);
  }

  StepResult Step(State& s, const float* action) const {
    const double x_before = s.physics[Physics::kQpos];
    {
      auto d = physics_.Borrow();
      physics_.Advance(s.physics, action, d.get());
    }
    const double x_after = s.physics[Physics::kQpos];
    s.x_velocity = (x_after - x_before) / physics_.dt();
    s.reward_forward = forward_reward_weight_ * s.x_velocity;
    const double z = s.physics[Physics::kQpos + 1], angle = s.physics[Physics::kQpos + 2];
    const bool healthy = 0.8 < z && z < 2.0 && -1.0 < angle && angle < 1.0;
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
    auto d = physics_.Borrow();
    physics_.Start(s.physics, qpos, qvel, d.get());
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
  int skip_x_;
  Physics physics_;
};

}  // namespace pyenvpool
