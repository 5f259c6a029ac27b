// Hopper-v5: Gymnasium 1.x's hopper_v5.py (wrapped in TimeLimit(1000)) on the
// same model (pyenvpool/assets/mujoco/hopper.xml, RK4): PlanarWalker
// (planar_walker.h, shared with Walker2d) with Hopper's model and health rule.
// See mujoco_locomotion.h for the physics state and the numerics.
//
// Action: Box(-1, 1, (3,)) float32; MuJoCo clamps ctrl, the control cost
// uses the action as given. Each step runs mj_step frame_skip (4) times.
// Reward: forward_reward_weight * x_velocity + healthy_reward (only while
// healthy) - ctrl_cost_weight * sum(action^2).
// Healthy: every element of (qpos[2:], qvel) strictly inside (-100, 100),
// z = qpos[1] > 0.7 and angle = qpos[2] strictly inside (-0.2, 0.2).
// terminated when not healthy (terminate_when_unhealthy); truncated at
// max_episode_steps (1000).
// Observation `obs` float64 [11]: qpos[1:], then qvel clipped to [-10, 10].
// Info fields: x_position, z_distance_from_origin, x_velocity, reward_forward,
// reward_ctrl, reward_survive, qpos [6], qvel [6].
// Reset: qpos = qpos0 + U(-5e-3, 5e-3), qvel = U(-5e-3, 5e-3).
#pragma once

#include "tasks/planar_walker.h"

namespace pyenvpool {

struct HopperModel {
  static constexpr const char* kId = "Hopper-v5";
  static constexpr const char* kFile = "hopper.xml";
  static constexpr int64_t kMinChunk = 2;  // a step costs ~150 us
  static constexpr int kNq = 6, kNv = 6, kNu = 3;

  // Gymnasium's is_healthy, with its default ranges (strict comparisons).
  static bool Healthy(const double* qpos, const double* qvel) {
    bool ok = true;
    for (int i = 2; i < kNq; ++i) ok = ok && -100.0 < qpos[i] && qpos[i] < 100.0;
    for (int i = 0; i < kNv; ++i) ok = ok && -100.0 < qvel[i] && qvel[i] < 100.0;
    const double z = qpos[1], angle = qpos[2];
    return ok && 0.7 < z && z < kInf && -0.2 < angle && angle < 0.2;
  }
};

using Hopper = PlanarWalker<HopperModel>;

}  // namespace pyenvpool
