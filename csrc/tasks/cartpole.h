// CartPole-v1, identical to Gymnasium's classic_control/cartpole.py
// (gymnasium 1.x, kinematics_integrator="euler", wrapped in TimeLimit(500)).
//
// The dynamics are evaluated in float64 in exactly Gymnasium's operation order,
// and the build turns off floating-point contraction (-ffp-contract=off), so
// the float64 state matches Gymnasium's bit for bit given the same start. The
// observation is the state rounded to float32, as Gymnasium returns it.
//
// Reward is +1 on every step, the terminating one included
// (sutton_barto_reward=True gives 0 per step and -1 on failure instead).
// `terminated` when |x| > 2.4 or |theta| > 12 degrees; `truncated` at 500 steps.
// Reset draws each of the four state variables from U(-0.05, 0.05).
// Frames are Gymnasium's picture (see Draw), pixel for pixel but for its
// anti-aliased edges.
//
// hide_velocity=True (not in Gymnasium; a memory task): the observation keeps
// x and theta and reports 0 for both velocities (their bounds become [0, 0]);
// the dynamics are unchanged, so a policy must infer velocities from history.
//
// step_cost_us=c > 0 (not in Gymnasium; uneven step costs, for measuring
// asynchronous stepping against synchronous): about one step in 16, picked by
// a hash of the new state, busy-waits 16 * c microseconds, so a step costs c
// on average but its cost varies widely from env to env and step to step, as
// a slow event in a simulator does. Episodes, observations and the random
// stream are those of c = 0. Such steps are worth a worker thread each, so
// the pool then splits even small batches across its threads (MinChunk).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class CartPole {
 public:
  static constexpr const char* kId = "CartPole-v1";
  static constexpr int64_t kMinChunk = 2048;  // a step costs ~20 ns; wake a worker for >= 2048

  struct State {
    Rng rng;
    double x, x_dot, theta, theta_dot;
    int32_t elapsed_steps;
  };

  explicit CartPole(Kwargs& kwargs) {
    max_episode_steps_ = static_cast<int32_t>(kwargs.Int("max_episode_steps", 500, 1, 1 << 30));
    sutton_barto_reward_ = kwargs.Bool("sutton_barto_reward", false);
    hide_velocity_ = kwargs.Bool("hide_velocity", false);
    step_cost_us_ = static_cast<int32_t>(kwargs.Int("step_cost_us", 0, 0, 1'000'000));
    kwargs.CheckAllUsed(kId);
  }

  int64_t MinChunk() const { return step_cost_us_ > 0 ? 1 : kMinChunk; }

  TaskSpec Spec() const {
    // Gymnasium's bounds, rounded to float32 as its Box stores them.
    const double x_high = static_cast<float>(kXThreshold * 2);
    const double theta_high = static_cast<float>(kThetaThreshold * 2);
    const double v_low = hide_velocity_ ? 0.0 : -kInf, v_high = hide_velocity_ ? 0.0 : kInf;
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(2);
    spec.obs_fields.push_back({"obs", DType::kFloat32, {4},
                               {-x_high, v_low, -theta_high, v_low},
                               {x_high, v_high, theta_high, v_high}});
    // reset(instances={"state": float64 [k, 4]}) starts episodes from given states.
    spec.instance_fields.push_back({"state", DType::kFloat64, {4}});
    return spec;
  }

  void Reset(State& s) const {
    s.x = s.rng.Uniform(-0.05, 0.05);
    s.x_dot = s.rng.Uniform(-0.05, 0.05);
    s.theta = s.rng.Uniform(-0.05, 0.05);
    s.theta_dot = s.rng.Uniform(-0.05, 0.05);
    s.elapsed_steps = 0;
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const double* v = row.Get<double>(0);
    for (int k = 0; k < 4; ++k) {
      if (!std::isfinite(v[k])) throw ValueError("'state' must be finite");
    }
    s.x = v[0];
    s.x_dot = v[1];
    s.theta = v[2];
    s.theta_dot = v[3];
    s.elapsed_steps = 0;
  }

  StepResult Step(State& s, int32_t action) const {
    // Gymnasium's expressions, term by term and in the same order.
    const double force = action == 1 ? kForceMag : -kForceMag;
    const double costheta = std::cos(s.theta);
    const double sintheta = std::sin(s.theta);
    const double temp =
        (force + kPolemassLength * (s.theta_dot * s.theta_dot) * sintheta) / kTotalMass;
    const double thetaacc = (kGravity * sintheta - costheta * temp) /
                            (kLength * (4.0 / 3.0 - kMassPole * (costheta * costheta) / kTotalMass));
    const double xacc = temp - kPolemassLength * thetaacc * costheta / kTotalMass;
    s.x = s.x + kTau * s.x_dot;
    s.x_dot = s.x_dot + kTau * xacc;
    s.theta = s.theta + kTau * s.theta_dot;
    s.theta_dot = s.theta_dot + kTau * thetaacc;
    s.elapsed_steps += 1;
    if (step_cost_us_ > 0) SpendTime(s);

    StepResult r;
    r.terminated = s.x < -kXThreshold || s.x > kXThreshold || s.theta < -kThetaThreshold ||
                   s.theta > kThetaThreshold;
    // As Gymnasium's TimeLimit: truncated at the limit even if it also terminated.
    r.truncated = s.elapsed_steps >= max_episode_steps_;
    if (sutton_barto_reward_) {
      r.reward = r.terminated ? -1.0f : 0.0f;
    } else {
      r.reward = 1.0f;
    }
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    float* o = row.Get<float>(0);
    o[0] = static_cast<float>(s.x);
    o[1] = hide_velocity_ ? 0.0f : static_cast<float>(s.x_dot);
    o[2] = static_cast<float>(s.theta);
    o[3] = hide_velocity_ ? 0.0f : static_cast<float>(s.theta_dot);
  }

  std::string Render(const State& s) const {
    // A 41-column track from x = -2.4 to 2.4, the cart as [#], and the pole's lean.
    std::string track(41, '-');
    int col = static_cast<int>(std::lround((s.x + kXThreshold) / (2 * kXThreshold) * 40));
    col = col < 0 ? 0 : (col > 40 ? 40 : col);
    track[col] = '#';
    char line[160];
    std::snprintf(line, sizeof(line), "|%s|  x=%+.3f  theta=%+.2f deg  step=%d", track.c_str(),
                  s.x, s.theta * 180.0 / M_PI, s.elapsed_steps);
    return line;
  }

  FrameSize Frame() const { return {kScreenHeight, kScreenWidth}; }

  // Gymnasium's CartPoleEnv.render: a 600 x 400 picture of the world from
  // x = -2.4 to 2.4, white, with the track line, the black cart, the pole and
  // the axle. Gymnasium draws in pygame with y upwards and flips the surface;
  // pygame truncates vertices to whole pixels and fills polygons including
  // their boundary pixels, so vertex (X, Y) is the centre of pixel X of row
  // kScreenHeight - 1 - Y here, and the pole gets a one-pixel outline where
  // Gymnasium has its anti-aliased one.
  void Draw(const State& s, Canvas& canvas) const {
    constexpr double kScale = kScreenWidth / (2 * kXThreshold);
    constexpr double kCartY = 100, kAxleOffset = 30.0 / 4, kPoleWidth = 10;
    constexpr double kPoleLength = kScale * (2 * kLength);
    constexpr Color kBlack = {0, 0, 0}, kPole = {202, 152, 101}, kAxle = {129, 132, 203};
    auto row = [](double pygame_y) { return kScreenHeight - 1 - pygame_y; };
    canvas.Fill({255, 255, 255});
    const double cart_x = s.x * kScale + kScreenWidth / 2.0;
    canvas.FillRect(std::trunc(cart_x - 25), row(std::trunc(kCartY + 15)),
                    std::trunc(cart_x + 25) + 1, row(std::trunc(kCartY - 15)) + 1, kBlack);
    // The pole's corners around the axle, rotated by -theta as pygame's
    // Vector2.rotate_rad does.
    const double left = -kPoleWidth / 2, right = kPoleWidth / 2;
    const double top = kPoleLength - kPoleWidth / 2, bottom = -kPoleWidth / 2;
    const double corners[4][2] = {{left, bottom}, {left, top}, {right, top}, {right, bottom}};
    const double cos_a = std::cos(-s.theta), sin_a = std::sin(-s.theta);
    double xs[4], ys[4];
    for (int k = 0; k < 4; ++k) {
      const double u = corners[k][0], v = corners[k][1];
      xs[k] = std::trunc(u * cos_a - v * sin_a + cart_x) + 0.5;
      ys[k] = row(std::trunc(u * sin_a + v * cos_a + kCartY + kAxleOffset)) + 0.5;
    }
    canvas.FillPolygon(xs, ys, 4, kPole);
    canvas.StrokePolygon(xs, ys, 4, 1.0, kPole);
    canvas.FillCircle(std::trunc(cart_x) + 0.5, row(std::trunc(kCartY + kAxleOffset)) + 0.5,
                      kPoleWidth / 2 + 0.5, kAxle);
    canvas.FillRect(0, row(kCartY), kScreenWidth, row(kCartY) + 1, kBlack);
  }

 private:
  // step_cost_us: busy-wait 16 * step_cost_us_ when a hash of the state hits 1 in 16.
  void SpendTime(const State& s) const {
    uint64_t h;
    std::memcpy(&h, &s.x, sizeof(h));
    h ^= static_cast<uint64_t>(s.elapsed_steps) * 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;  // splitmix64's finaliser
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    if (((h ^ (h >> 31)) & 15) != 0) return;
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::microseconds(16 * static_cast<int64_t>(step_cost_us_));
    while (std::chrono::steady_clock::now() < until) {
    }
  }

  static constexpr int kScreenWidth = 600;
  static constexpr int kScreenHeight = 400;
  static constexpr double kGravity = 9.8;
  static constexpr double kMassCart = 1.0;
  static constexpr double kMassPole = 0.1;
  static constexpr double kTotalMass = kMassPole + kMassCart;
  static constexpr double kLength = 0.5;
  static constexpr double kPolemassLength = kMassPole * kLength;
  static constexpr double kForceMag = 10.0;
  static constexpr double kTau = 0.02;
  static constexpr double kThetaThreshold = 12 * 2 * M_PI / 360;
  static constexpr double kXThreshold = 2.4;

  int32_t max_episode_steps_;
  bool sutton_barto_reward_;
  bool hide_velocity_;
  int32_t step_cost_us_;
};

}  // namespace pyenvpool
