// Walker2d-v5: Gymnasium 1.x's walker2d_v5.py (wrapped in TimeLimit(1000)) on
// the same model (pyenvpool/assets/mujoco/walker2d_v5.xml, RK4; v5 gives both
// feet the same friction): PlanarWalker (planar_walker.h, shared with Hopper)
// with Walker2d's model and health rule. See mujoco_locomotion.h for the
// physics state and the numerics.
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

#include "tasks/planar_walker.h"

namespace pyenvpool {

struct Walker2dModel {
  static constexpr const char* kId = "Walker2d-v5";
  static constexpr const char* kFile = "walker2d_v5.xml";
  static constexpr int64_t kMinChunk = 2;  // a step costs ~250 us
  static constexpr int kNq = 9, kNv = 9, kNu = 6;

  // Gymnasium's is_healthy, with its default ranges (strict comparisons).
  static bool Healthy(const double* qpos, const double* /*qvel*/) {
    const double z = qpos[1], angle = qpos[2];
    return 0.8 < z && z < 2.0 && -1.0 < angle && angle < 1.0;
  }
};

using Walker2d = PlanarWalker<Walker2dModel>;

}  // namespace pyenvpool
