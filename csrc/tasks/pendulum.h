// Pendulum-v1, identical to Gymnasium's classic_control/pendulum.py
// (gymnasium 1.x, wrapped in TimeLimit(200)).
//
// State: the angle theta (0 upright, counter-clockwise positive, never
// wrapped: it accumulates as Gymnasium's does) and the angular velocity, both
// float64. Action: Box(-2, 2, (1,)) float32, the torque. Observation `obs`
// float32 [3]: cos(theta), sin(theta), theta_dot, within [-1, 1] x [-1, 1] x
// [-8, 8]. Reward: -(angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2),
// from the state before the step; never terminated; truncated at 200 steps
// (`max_episode_steps`). Reset: theta ~ U(-pi, pi), theta_dot ~ U(-1, 1).
// `g` (default 10) is Gymnasium's gravity argument.
//
// Exactness. Gymnasium computes the step on NumPy scalars; every expression
// below repeats its operation order and its NumPy 2 types (the build turns off
// floating-point contraction), so the float64 state matches Gymnasium's bit
// for bit given the same start and the same float32 actions:
// - the torque stays float32 (the action's dtype): `np.clip` clips it in
//   float32, `u**2` and the torque term `3.0 / (m * l**2) * u` are float32
//   operations (a Python float meeting a float32 scalar is cast to float32);
// - `x**2` of a NumPy float64 (float32) scalar calls libm's pow (powf), which
//   can differ from x * x in the last bit: NumpySquare does the same call;
// - angle_normalize uses Python's float modulo (fmod moved to the divisor's
//   sign), as NumPy's does;
// - np.sin and np.cos of a float64 scalar return libm's sin and cos (NumPy
//   2.4 on x86-64; the lockstep test would catch a NumPy that does not).
// (Float32 actions are what Gymnasium's action_space holds and what the
// engine steps with: it converts other dtypes to float32. Gymnasium's Pendulum
// given a float64 action computes those terms in float64 instead.)
// The reward is Gymnasium's float64 value rounded to float32 (the engine's
// reward dtype). An action outside [-2, 2] is clipped here, as Gymnasium's
// Pendulum does itself; NaN and infinity never get here (the bindings refuse
// them).
//
// reset(instances={"state": float64 [k, 2]}) starts from given (theta,
// theta_dot): theta finite, |theta_dot| <= 8 (the states Gymnasium's steps
// produce; the observation stays within its bounds).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class Pendulum {
 public:
  static constexpr const char* kId = "Pendulum-v1";
  static constexpr int64_t kMinChunk = 1024;  // a step costs ~50-80 ns (sin, cos, pow)
  using Action = const float*;

  struct State {
    Rng rng;
    double theta, theta_dot;
    float last_u;  // the clipped torque of the last step (0 after reset): drawn as an arrow
    int32_t elapsed_steps;
  };

  explicit Pendulum(Kwargs& kwargs) {
    max_episode_steps_ = static_cast<int32_t>(kwargs.Int("max_episode_steps", 200, 1, 1 << 30));
    g_ = kwargs.Float("g", 10.0, 0.0, 1000.0);
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Box({1}, {-kMaxTorque}, {kMaxTorque});
    spec.obs_fields.push_back(
        {"obs", DType::kFloat32, {3}, {-1.0, -1.0, -kMaxSpeed}, {1.0, 1.0, kMaxSpeed}});
    spec.instance_fields.push_back({"state", DType::kFloat64, {2}});
    return spec;
  }

  void Reset(State& s) const {
    // np_random.uniform(low=[-pi, -1], high=[pi, 1]): low + (high - low) * U[0, 1).
    s.theta = s.rng.Uniform(-M_PI, M_PI);
    s.theta_dot = s.rng.Uniform(-1.0, 1.0);
    s.last_u = 0.0f;
    s.elapsed_steps = 0;
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const double* v = row.Get<double>(0);
    if (!std::isfinite(v[0])) throw ValueError("'state' theta must be finite");
    if (!(std::fabs(v[1]) <= kMaxSpeed)) throw ValueError("'state' theta_dot must be in [-8, 8]");
    s.theta = v[0];
    s.theta_dot = v[1];
    s.last_u = 0.0f;
    s.elapsed_steps = 0;
  }

  StepResult Step(State& s, const float* action) const {
    const double th = s.theta, thdot = s.theta_dot;
    // u = np.clip(u, -2.0, 2.0)[0]: float32 in, float32 out.
    const float u = std::min(std::max(action[0], static_cast<float>(-kMaxTorque)),
                             static_cast<float>(kMaxTorque));
    s.last_u = u;
    // costs = angle_normalize(th)**2 + 0.1 * thdot**2 + 0.001 * (u**2), the
    // last term a float32 product.
    const double costs = NumpySquare(AngleNormalize(th)) + 0.1 * NumpySquare(thdot) +
                         static_cast<double>(static_cast<float>(0.001) * NumpySquare(u));
    // newthdot = thdot + (3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l**2) * u) * dt,
    // the torque term a float32 product.
    const float torque_term = static_cast<float>(3.0 / (kMass * (kLength * kLength))) * u;
    double newthdot =
        thdot + ((3 * g_) / (2 * kLength) * std::sin(th) + static_cast<double>(torque_term)) * kDt;
    newthdot = std::min(std::max(newthdot, -kMaxSpeed), kMaxSpeed);
    s.theta = th + newthdot * kDt;
    s.theta_dot = newthdot;
    s.elapsed_steps += 1;

    StepResult r;
    r.reward = static_cast<float>(-costs);  // within [-16.28, 0]: no float32 overflow
    r.truncated = s.elapsed_steps >= max_episode_steps_;
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    float* o = row.Get<float>(0);
    o[0] = static_cast<float>(std::cos(s.theta));
    o[1] = static_cast<float>(std::sin(s.theta));
    o[2] = static_cast<float>(s.theta_dot);
  }

  // Imported states are checked with this: the same domain as LoadInstance.
  std::string CheckState(const State& s) const {
    if (!std::isfinite(s.theta) || !(std::fabs(s.theta_dot) <= kMaxSpeed)) {
      return "theta not finite or theta_dot outside [-8, 8]";
    }
    if (!(std::fabs(s.last_u) <= kMaxTorque)) return "last torque outside [-2, 2]";
    if (s.elapsed_steps < 0 || s.elapsed_steps > max_episode_steps_) {
      return "step count outside [0, max_episode_steps]";
    }
    return "";
  }

  std::string Render(const State& s) const {
    char line[160];
    std::snprintf(line, sizeof(line), "theta=%+.4g rad (%+.1f deg from upright)  theta_dot=%+.3f"
                  "  torque=%+.3f  step=%d", s.theta,
                  AngleNormalize(s.theta) * 180.0 / M_PI, s.theta_dot, s.last_u, s.elapsed_steps);
    return line;
  }

  // Gymnasium's 500 x 500 frame: a red rod of length 1 from the centre (the
  // world spans [-2.2, 2.2]), round at both ends, a black axle, and an arc
  // arrow for the last torque, sized by |u| and turning its way (Gymnasium
  // scales a clockwise-arrow image; here it is drawn with lines).
  FrameSize Frame() const { return {kScreen, kScreen}; }

  void Draw(const State& s, Canvas& canvas) const {
    const Color rod{204, 77, 77};
    canvas.Fill({255, 255, 255});
    const double scale = kScreen / (2.2 * 2);
    const double centre = kScreen / 2;
    const double length = 1 * scale, half_width = 0.2 * scale / 2;
    // Gymnasium draws y-up and flips the frame: the rod points along
    // (-sin theta, -cos theta) in canvas pixels (y down).
    const double dx = -std::sin(s.theta), dy = -std::cos(s.theta);
    const double xs[4] = {centre - dy * half_width, centre + dy * half_width,
                          centre + dx * length + dy * half_width,
                          centre + dx * length - dy * half_width};
    const double ys[4] = {centre + dx * half_width, centre - dx * half_width,
                          centre + dy * length - dx * half_width,
                          centre + dy * length + dx * half_width};
    canvas.FillPolygon(xs, ys, 4, rod);
    const double end_radius = std::floor(half_width);
    canvas.FillCircle(centre, centre, end_radius, rod);
    canvas.FillCircle(centre + dx * length, centre + dy * length, end_radius, rod);
    if (s.last_u != 0.0f) {
      DrawTorqueArrow(canvas, centre, scale * std::fabs(s.last_u) / 2, s.last_u);
    }
    canvas.FillCircle(centre, centre, std::floor(0.05 * scale), {0, 0, 0});
  }

 private:
  static constexpr double kMaxSpeed = 8;
  static constexpr double kMaxTorque = 2.0;
  static constexpr double kDt = 0.05;
  static constexpr double kMass = 1.0;
  static constexpr double kLength = 1.0;
  static constexpr int kScreen = 500;

  // `x**2` for a NumPy float64 scalar: libm's pow(x, 2.0), as NumPy calls it.
  // The exponent is volatile so the compiler cannot rewrite the call as x * x.
  static double NumpySquare(double x) {
    volatile double two = 2.0;
    return std::pow(x, static_cast<double>(two));
  }
  // The same for a float32 scalar: powf(x, 2.0f).
  static float NumpySquare(float x) {
    volatile float two = 2.0f;
    return std::pow(x, static_cast<float>(two));
  }

  // ((x + pi) % (2 * pi)) - pi with Python's float modulo: the result of fmod
  // moved to the sign of the divisor, and +0.0 for an exact multiple.
  static double AngleNormalize(double x) {
    const double a = x + M_PI, b = 2 * M_PI;
    double mod = std::fmod(a, b);
    if (mod != 0) {
      if ((b < 0) != (mod < 0)) mod += b;
    } else {
      mod = std::copysign(0.0, b);
    }
    return mod - M_PI;
  }

  // A 3/4 circle of diameter `size` around the centre with an arrowhead at
  // its end: clockwise on screen for a negative torque, counter-clockwise for
  // a positive one (the direction the torque turns the rod).
  static void DrawTorqueArrow(Canvas& canvas, double centre, double size, float u) {
    const Color black{0, 0, 0};
    const double radius = 0.47 * size, width = std::max(1.0, 0.035 * size);
    const double mirror = u > 0 ? -1.0 : 1.0;  // x mirrored for counter-clockwise
    constexpr int kSegments = 24;
    // phi is measured clockwise from 12 o'clock; the arc runs from 0 to 3/2 pi.
    auto at = [&](double phi, double* x, double* y) {
      *x = centre + mirror * radius * std::sin(phi);
      *y = centre - radius * std::cos(phi);
    };
    const double end = 1.5 * M_PI - 0.3;  // leave room for the head
    double x0, y0, x1, y1;
    at(0.0, &x0, &y0);
    for (int k = 1; k <= kSegments; ++k) {
      at(end * k / kSegments, &x1, &y1);
      canvas.Line(x0, y0, x1, y1, width, black);
      x0 = x1;
      y0 = y1;
    }
    // The head: a triangle whose tip is beyond phi = 3/2 pi, pointing along the arc.
    double tip_x, tip_y;
    at(1.5 * M_PI + 0.1, &tip_x, &tip_y);
    const double head = std::max(2.0, 0.09 * size);
    const double xs[3] = {tip_x, x1 - mirror * head, x1 + mirror * head};
    const double ys[3] = {tip_y, y1, y1};
    canvas.FillPolygon(xs, ys, 3, black);
  }

  int32_t max_episode_steps_;
  double g_;
};

}  // namespace pyenvpool
