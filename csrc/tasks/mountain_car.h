// MountainCar-v0, identical to Gymnasium's classic_control/mountain_car.py
// (gymnasium 1.x, wrapped in TimeLimit(200)).
//
// State: position in [-1.2, 0.6] and velocity in [-0.07, 0.07], float64 (the
// step runs on NumPy float64 scalars and Python floats, so the whole step is
// float64 arithmetic; the build turns off floating-point contraction and the
// expressions keep Gymnasium's order, so the state matches Gymnasium's bit for
// bit). Actions: Discrete(3), push left, no push, push right. Observation `obs`
// float32 [2] (position, velocity), within Gymnasium's float32 box. Reward -1
// on every step; `terminated` when position >= 0.5 and velocity >=
// goal_velocity (default 0); truncated at 200 steps (`max_episode_steps`).
// Reset: position ~ U(-0.6, -0.4), velocity 0.
//
// reset(instances={"state": float64 [k, 2]}) starts from given (position,
// velocity) within the observation box.
//
// The text and rgb rendering helpers are shared with
// MountainCarContinuous-v0, whose scene is the same.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class MountainCar {
 public:
  static constexpr const char* kId = "MountainCar-v0";
  static constexpr int64_t kMinChunk = 2048;  // a step costs ~15 ns

  struct State {
    Rng rng;
    double position, velocity;
    int32_t elapsed_steps;
  };

  explicit MountainCar(Kwargs& kwargs) {
    max_episode_steps_ = static_cast<int32_t>(kwargs.Int("max_episode_steps", 200, 1, 1 << 30));
    goal_velocity_ = kwargs.Float("goal_velocity", 0.0, -kMaxSpeed, kMaxSpeed);
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(3);
    spec.obs_fields.push_back({"obs",
                               DType::kFloat32,
                               {2},
                               {static_cast<float>(kMinPosition), static_cast<float>(-kMaxSpeed)},
                               {static_cast<float>(kMaxPosition), static_cast<float>(kMaxSpeed)}});
    spec.instance_fields.push_back({"state", DType::kFloat64, {2}});
    return spec;
  }

  void Reset(State& s) const {
    s.position = s.rng.Uniform(-0.6, -0.4);
    s.velocity = 0.0;
    s.elapsed_steps = 0;
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const double* v = row.Get<double>(0);
    if (!InBox(v[0], v[1])) {
      throw ValueError("'state' must be (position, velocity) within [-1.2, 0.6] x [-0.07, 0.07]");
    }
    s.position = v[0];
    s.velocity = v[1];
    s.elapsed_steps = 0;
  }

  StepResult Step(State& s, int32_t action) const {
    // Gymnasium's expressions, term by term and in the same order.
    double velocity =
        s.velocity + ((action - 1) * kForce + std::cos(3 * s.position) * (-kGravity));
    velocity = std::min(std::max(velocity, -kMaxSpeed), kMaxSpeed);  // np.clip
    double position = s.position + velocity;
    position = std::min(std::max(position, kMinPosition), kMaxPosition);
    if (position == kMinPosition && velocity < 0) velocity = 0;
    s.position = position;
    s.velocity = velocity;
    s.elapsed_steps += 1;
    StepResult r;
    r.reward = -1.0f;
    r.terminated = position >= kGoalPosition && velocity >= goal_velocity_;
    r.truncated = s.elapsed_steps >= max_episode_steps_;
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    float* o = row.Get<float>(0);
    o[0] = static_cast<float>(s.position);
    o[1] = static_cast<float>(s.velocity);
  }

  std::string CheckState(const State& s) const {
    if (!InBox(s.position, s.velocity)) return "position or velocity outside the observation box";
    if (s.elapsed_steps < 0 || s.elapsed_steps > max_episode_steps_) {
      return "step count outside [0, max_episode_steps]";
    }
    return "";
  }

  std::string Render(const State& s) const {
    return RenderTrack(s.position, s.velocity, kGoalPosition, s.elapsed_steps);
  }

  FrameSize Frame() const { return FrameOf(); }
  void Draw(const State& s, Canvas& canvas) const { DrawScene(canvas, s.position, kGoalPosition); }

  // Shared with MountainCarContinuous-v0 -----------------------------------

  // A 41-column track from -1.2 to 0.6: the car as 'C', the goal flag as '|'.
  static std::string RenderTrack(double position, double velocity, double goal, int steps) {
    std::string track(41, '_');
    track[Column(goal)] = '|';
    track[Column(position)] = 'C';
    char line[160];
    std::snprintf(line, sizeof(line), "[%s]  position=%+.4f  velocity=%+.5f  step=%d",
                  track.c_str(), position, velocity, steps);
    return line;
  }

  static FrameSize FrameOf() { return {kScreenHeight, kScreenWidth}; }

  // Gymnasium's 600 x 400 frame: the hill sin(3x) * 0.45 + 0.55 as a black
  // line, a black car tilted by cos(3 * position) radians (Gymnasium's
  // angle, not the slope's) with two grey wheels, and a yellow flag at the goal.
  static void DrawScene(Canvas& canvas, double position, double goal) {
    const Color black{0, 0, 0};
    canvas.Fill({255, 255, 255});
    const double scale = kScreenWidth / (kMaxPosition - kMinPosition);
    // Gymnasium draws y-up and flips the frame vertically.
    auto flip = [](double y) { return kScreenHeight - y; };
    double x0 = 0, y0 = 0;
    for (int k = 0; k < 100; ++k) {
      const double x = kMinPosition + (kMaxPosition - kMinPosition) * k / 99;
      const double px = (x - kMinPosition) * scale, py = flip(Height(x) * scale);
      if (k > 0) canvas.Line(x0, y0, px, py, 1.0, black);
      x0 = px;
      y0 = py;
    }
    constexpr double kCarWidth = 40, kCarHeight = 20, kClearance = 10;
    const double angle = std::cos(3 * position);
    const double ca = std::cos(angle), sa = std::sin(angle);
    const double base_x = (position - kMinPosition) * scale;
    const double base_y = kClearance + Height(position) * scale;
    const double lx[4] = {-kCarWidth / 2, -kCarWidth / 2, kCarWidth / 2, kCarWidth / 2};
    const double ly[4] = {0, kCarHeight, kCarHeight, 0};
    double xs[4], ys[4];
    for (int k = 0; k < 4; ++k) {
      xs[k] = lx[k] * ca - ly[k] * sa + base_x;
      ys[k] = flip(lx[k] * sa + ly[k] * ca + base_y);
    }
    canvas.FillPolygon(xs, ys, 4, black);
    for (double wx : {kCarWidth / 4, -kCarWidth / 4}) {
      // Gymnasium truncates the wheel centres to whole pixels.
      const double cx = std::trunc(wx * ca + base_x), cy = std::trunc(wx * sa + base_y);
      canvas.FillCircle(cx + 0.5, flip(cy + 0.5), std::floor(kCarHeight / 2.5), {128, 128, 128});
    }
    const double flag_x = std::trunc((goal - kMinPosition) * scale);
    const double flag_y1 = std::trunc(Height(goal) * scale), flag_y2 = flag_y1 + 50;
    canvas.FillRect(flag_x, flip(flag_y2 + 1), flag_x + 1, flip(flag_y1), black);
    const double fx[3] = {flag_x, flag_x, flag_x + 25};
    const double fy[3] = {flip(flag_y2), flip(flag_y2 - 10), flip(flag_y2 - 5)};
    canvas.FillPolygon(fx, fy, 3, {204, 204, 0});
  }

 private:
  static constexpr double kMinPosition = -1.2;
  static constexpr double kMaxPosition = 0.6;
  static constexpr double kMaxSpeed = 0.07;
  static constexpr double kGoalPosition = 0.5;
  static constexpr double kForce = 0.001;
  static constexpr double kGravity = 0.0025;
  static constexpr int kScreenWidth = 600;
  static constexpr int kScreenHeight = 400;

  static double Height(double x) { return std::sin(3 * x) * 0.45 + 0.55; }
  static int Column(double position) {
    const double f = (position - kMinPosition) / (kMaxPosition - kMinPosition) * 40;
    return static_cast<int>(std::lround(std::clamp(f, 0.0, 40.0)));
  }
  static bool InBox(double position, double velocity) {
    return position >= static_cast<float>(kMinPosition) &&
           position <= static_cast<float>(kMaxPosition) &&
           velocity >= static_cast<float>(-kMaxSpeed) && velocity <= static_cast<float>(kMaxSpeed);
  }

  int32_t max_episode_steps_;
  double goal_velocity_;
};

}  // namespace pyenvpool
