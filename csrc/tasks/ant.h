// Ant-v5: Gymnasium 1.x's ant_v5.py (wrapped in TimeLimit(1000)) on the same
// model (pyenvpool/assets/mujoco/ant.xml, RK4). See mujoco_locomotion.h for
// the physics state and the numerics.
//
// Action: Box(-1, 1, (8,)) float32; MuJoCo clamps ctrl, the control cost
// uses the action as given. Each step runs mj_step frame_skip (5) times and
// then mj_rnePostConstraint, which computes the contact forces cfrc_ext.
// Reward: forward_reward_weight * x_velocity + healthy_reward (only while
// healthy) - (ctrl_cost_weight * sum(action^2) + contact_cost_weight *
// sum(clip(cfrc_ext, -1, 1)^2)). x_velocity is the torso's (body 1) xpos
// difference over dt; like Gymnasium's, that xpos is the one MuJoCo computed
// at the start of the last mj_step, so the State keeps it for the next step.
// Healthy: qpos and qvel finite and 0.2 <= z = qpos[2] <= 1.0. terminated when
// not healthy (terminate_when_unhealthy); truncated at max_episode_steps (1000).
// Observation `obs` float64 [105]: qpos[2:] (13), qvel (14), and the clipped
// cfrc_ext of bodies 1..13 (78; include_cfrc_ext_in_observation=False drops them).
// Info fields: x_position, y_position, distance_from_origin, x_velocity,
// y_velocity, reward_forward, reward_ctrl, reward_contact, reward_survive,
// qpos [15], qvel [14].
// Reset: qpos = qpos0 + U(-0.1, 0.1), qvel = 0.1 * N(0, 1).
#pragma once

#include "tasks/mujoco_locomotion.h"

namespace pyenvpool {

class Ant {
 public:
  static constexpr const char* kId = "Ant-v5";
  static constexpr const char* kFile = "ant.xml";  // in pyenvpool/assets/mujoco
  static constexpr int64_t kMinChunk = 2;  // a step costs ~300 us
  using Action = const float*;
  static constexpr int kNq = 15, kNv = 14, kNu = 8, kNbody = 14;
  using Physics = mujoco::Physics<kNq, kNv, kNu>;

  struct State {
    Rng rng;
    int32_t elapsed_steps;
    double physics[Physics::kStateSize];
    double torso_xy[2];  // the torso's xpos as MuJoCo last computed it
    double contact_forces[(kNbody - 1) * 6];  // clipped cfrc_ext of bodies 1..13
    double x_velocity, y_velocity, reward_forward, reward_ctrl, reward_contact, reward_survive;
  };

  explicit Ant(Kwargs& kwargs)
      : frame_skip_(static_cast<int>(kwargs.Int("frame_skip", 5, 1, 1000))),
        max_episode_steps_(static_cast<int32_t>(kwargs.Int("max_episode_steps", 1000, 1, 1 << 30))),
        forward_reward_weight_(kwargs.Float("forward_reward_weight", 1.0, -1e9, 1e9)),
        ctrl_cost_weight_(static_cast<float>(kwargs.Float("ctrl_cost_weight", 0.5, -1e9, 1e9))),
        contact_cost_weight_(kwargs.Float("contact_cost_weight", 5e-4, -1e9, 1e9)),
        healthy_reward_(kwargs.Float("healthy_reward", 1.0, -1e9, 1e9)),
        terminate_when_unhealthy_(kwargs.Bool("terminate_when_unhealthy", true)),
        reset_noise_scale_(kwargs.Float("reset_noise_scale", 0.1, 0.0, 1e3)),
        skip_xy_(kwargs.Bool("exclude_current_positions_from_observation", true) ? 2 : 0),
        include_cfrc_(kwargs.Bool("include_cfrc_ext_in_observation", true)),
        physics_(kId, kFile, frame_skip_) {
    kwargs.CheckAllUsed(kId);
    if (physics_.m()->nbody != kNbody) throw std::logic_error("Ant-v5: ant.xml has another body count");
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = physics_.Action();
    const int64_t obs_size = kNq - skip_xy_ + kNv + (include_cfrc_ ? (kNbody - 1) * 6 : 0);
    spec.obs_fields = {
        {"obs", DType::kFloat64, {obs_size}},
        mujoco::InfoField("x_position"),
        mujoco::InfoField("y_position"),
        mujoco::InfoField("distance_from_origin"),
        mujoco::InfoField("x_velocity"),
        mujoco::InfoField("y_velocity"),
        mujoco::InfoField("reward_forward"),
        mujoco::InfoField("reward_ctrl"),
        mujoco::InfoField("reward_contact"),
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
    for (int i = 0; i < kNv; ++i) qvel[i] = 0.0 + reset_noise_scale_ * mujoco::StandardNormal(s.rng);
    Start(s, qpos, qvel);
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    Physics::CheckInstance(row);
    Start(s, row.Get<double>(0), row.Get<double>(1));
  }

  StepResult Step(State& s, const float* action) const {
    const double x_before = s.torso_xy[0], y_before = s.torso_xy[1];
    double contact_cost;
    {
      auto d = physics_.Borrow();
      physics_.Advance(s.physics, action, d.get());
      physics_.api().mj_rnePostConstraint(physics_.m(), d.get());
      contact_cost = contact_cost_weight_ * ContactForces(s, d.get());
    }
    s.x_velocity = (s.torso_xy[0] - x_before) / physics_.dt();
    s.y_velocity = (s.torso_xy[1] - y_before) / physics_.dt();
    s.reward_forward = s.x_velocity * forward_reward_weight_;
    const bool healthy = Healthy(s);
    s.reward_survive = (healthy ? 1.0 : 0.0) * healthy_reward_;
    const float ctrl_cost = mujoco::ControlCost<kNu>(ctrl_cost_weight_, action);
    s.reward_ctrl = -static_cast<double>(ctrl_cost);
    s.reward_contact = -contact_cost;
    const double costs = static_cast<double>(ctrl_cost) + contact_cost;
    const double reward = (s.reward_forward + s.reward_survive) - costs;
    s.elapsed_steps += 1;
    return {static_cast<float>(reward), !healthy && terminate_when_unhealthy_,
            s.elapsed_steps >= max_episode_steps_};
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    const double* qpos = s.physics + Physics::kQpos;
    const double* qvel = s.physics + Physics::kQvel;
    double* obs = row.Get<double>(0);
    for (int i = skip_xy_; i < kNq; ++i) *obs++ = qpos[i];
    for (int i = 0; i < kNv; ++i) *obs++ = qvel[i];
    if (include_cfrc_) std::memcpy(obs, s.contact_forces, sizeof(s.contact_forces));
    *row.Get<double>(1) = qpos[0];
    *row.Get<double>(2) = qpos[1];
    // np.linalg.norm(qpos[0:2]) is sqrt(dot), and OpenBLAS's ddot on x86-64
    // accumulates with fused multiply-adds: fma(y, y, x * x).
    *row.Get<double>(3) = std::sqrt(std::fma(qpos[1], qpos[1], qpos[0] * qpos[0]));
    *row.Get<double>(4) = s.x_velocity;
    *row.Get<double>(5) = s.y_velocity;
    *row.Get<double>(6) = s.reward_forward;
    *row.Get<double>(7) = s.reward_ctrl;
    *row.Get<double>(8) = s.reward_contact;
    *row.Get<double>(9) = s.reward_survive;
    std::memcpy(row.Get<double>(10), qpos, sizeof(double) * kNq);
    std::memcpy(row.Get<double>(11), qvel, sizeof(double) * kNv);
  }

 private:
  static constexpr int kTorso = 1;  // Gymnasium's main_body

  // Reads the torso position and the clipped contact forces from `d` into the
  // State; returns np.sum(np.square(clip(cfrc_ext))) over every body.
  static double ContactForces(State& s, const mjData* d) {
    s.torso_xy[0] = d->xpos[3 * kTorso];
    s.torso_xy[1] = d->xpos[3 * kTorso + 1];
    double squares[kNbody * 6];
    for (int i = 0; i < kNbody * 6; ++i) {
      const double f = mujoco::Clip(d->cfrc_ext[i], -1.0, 1.0);
      squares[i] = f * f;
      if (i >= 6) s.contact_forces[i - 6] = f;
    }
    return mujoco::NumpySum(squares, kNbody * 6);
  }

  static bool Healthy(const State& s) {
    const double* q = s.physics + Physics::kQpos;  // qpos then qvel: Gymnasium's state_vector
    for (int i = 0; i < kNq + kNv; ++i) {
      if (!std::isfinite(q[i])) return false;
    }
    return 0.2 <= q[2] && q[2] <= 1.0;
  }

  void Start(State& s, const double* qpos, const double* qvel) const {
    auto d = physics_.Borrow();
    physics_.Start(s.physics, qpos, qvel, d.get());
    ContactForces(s, d.get());
    s.elapsed_steps = 0;
    s.x_velocity = s.y_velocity = 0.0;
    s.reward_forward = s.reward_ctrl = s.reward_contact = s.reward_survive = 0.0;
  }

  int frame_skip_;
  int32_t max_episode_steps_;
  double forward_reward_weight_;
  float ctrl_cost_weight_;
  double contact_cost_weight_;
  double healthy_reward_;
  bool terminate_when_unhealthy_;
  double reset_noise_scale_;
  int skip_xy_;  // 2: the observation leaves out qpos[0:2]
  bool include_cfrc_;
  Physics physics_;
};

}  // namespace pyenvpool
