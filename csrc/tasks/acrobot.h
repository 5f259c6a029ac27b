// Acrobot-v1, identical to Gymnasium's classic_control/acrobot.py
// (gymnasium 1.x, wrapped in TimeLimit(500)).
//
// Two links hang from a pivot; the torque (-1, 0, +1: Discrete(3)) acts on
// the joint between them. State: theta1, theta2 (wrapped into [-pi, pi]) and
// their velocities (bounded to 4 pi and 9 pi), float64. Observation `obs`
// float32 [6]: cos theta1, sin theta1, cos theta2, sin theta2, dtheta1,
// dtheta2, within Gymnasium's box. Reward -1 per step, 0 on the terminating
// one; `terminated` when -cos(theta1) - cos(theta2 + theta1) > 1 (the tip
// above the bar); truncated at 500 steps (`max_episode_steps`). Reset: the
// four state variables ~ U(-0.1, 0.1), rounded to float32 as Gymnasium's
// reset does (`.astype(np.float32)`).
//
// Exactness. One step is Gymnasium's `rk4` over [0, dt] with dt = 0.2: one
// classic Runge-Kutta step of `_dsdt` on the state augmented with the torque,
// then `wrap` (repeated subtraction or addition of 2 pi, not fmod) of both
// angles and `bound` (Python's min(max(x, m), M)) of both velocities, in that
// order. Every expression repeats Gymnasium's operation order in float64 (the
// build turns off floating-point contraction); `x**2` of a NumPy float64
// scalar is libm's pow(x, 2.0), which can differ from x * x in the last bit,
// and NumpySquare makes the same call; NumPy's sin and cos of a float64 scalar
// are libm's (NumPy 2.4 on x86-64; the lockstep test would catch a NumPy that
// differs). The dynamics are the "book" variant,
// Gymnasium's default (`book_or_nips="nips"` selects the other); Gymnasium's
// torque noise is 0 and is not modelled.
//
// reset(instances={"state": float64 [k, 4]}) starts from given states with
// angles in [-pi, pi] and velocities within the bounds: the states
// Gymnasium's steps produce. (Outside them Gymnasium's `wrap` may loop for
// very long; it loops at most a few times from these.)
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class Acrobot {
 public:
  static constexpr const char* kId = "Acrobot-v1";
  static constexpr int64_t kMinChunk = 256;  // a step costs ~0.3-0.5 us (4 derivatives)

  struct State {
    Rng rng;
    double s[4];  // theta1, theta2, dtheta1, dtheta2
    int32_t elapsed_steps;
  };

  explicit Acrobot(Kwargs& kwargs) {
    max_episode_steps_ = static_cast<int32_t>(kwargs.Int("max_episode_steps", 500, 1, 1 << 30));
    nips_ = kwargs.Choice("book_or_nips", "book", {"book", "nips"}) == "nips";
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    // Gymnasium's bounds, float32 as its Box stores them.
    const double v1 = static_cast<float>(kMaxVel1), v2 = static_cast<float>(kMaxVel2);
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(3);
    spec.obs_fields.push_back({"obs", DType::kFloat32, {6},
                               {-1.0, -1.0, -1.0, -1.0, -v1, -v2}, {1.0, 1.0, 1.0, 1.0, v1, v2}});
    spec.instance_fields.push_back({"state", DType::kFloat64, {4}});
    return spec;
  }

  void Reset(State& s) const {
    for (double& v : s.s) v = static_cast<float>(s.rng.Uniform(-0.1, 0.1));
    s.elapsed_steps = 0;
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const double* v = row.Get<double>(0);
    if (!InDomain(v)) {
      throw ValueError("'state' must have angles in [-pi, pi] and |dtheta1| <= 4 pi, "
                       "|dtheta2| <= 9 pi");
    }
    for (int k = 0; k < 4; ++k) s.s[k] = v[k];
    s.elapsed_steps = 0;
  }

  StepResult Step(State& s, int32_t action) const {
    // torque = AVAIL_TORQUE[a]; ns = rk4(self._dsdt, s_augmented, [0, dt]).
    // The torque's derivative is 0, so it stays `torque` in every stage.
    const double torque = kTorques[action];
    const double dt = kDt - 0, dt2 = dt / 2.0;
    const double* y0 = s.s;
    double k1[4], k2[4], k3[4], k4[4], y[4];
    Derivs(y0, torque, k1);
    for (int i = 0; i < 4; ++i) y[i] = y0[i] + dt2 * k1[i];
    Derivs(y, torque, k2);
    for (int i = 0; i < 4; ++i) y[i] = y0[i] + dt2 * k2[i];
    Derivs(y, torque, k3);
    for (int i = 0; i < 4; ++i) y[i] = y0[i] + dt * k3[i];
    Derivs(y, torque, k4);
    double ns[4];
    for (int i = 0; i < 4; ++i) {
      // y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), elementwise
      ns[i] = y0[i] + dt / 6.0 * (((k1[i] + 2 * k2[i]) + 2 * k3[i]) + k4[i]);
    }
    ns[0] = Wrap(ns[0], -M_PI, M_PI);
    ns[1] = Wrap(ns[1], -M_PI, M_PI);
    ns[2] = Bound(ns[2], -kMaxVel1, kMaxVel1);
    ns[3] = Bound(ns[3], -kMaxVel2, kMaxVel2);
    for (int i = 0; i < 4; ++i) s.s[i] = ns[i];
    s.elapsed_steps += 1;

    StepResult r;
    r.terminated = -std::cos(s.s[0]) - std::cos(s.s[1] + s.s[0]) > 1.0;
    r.reward = r.terminated ? 0.0f : -1.0f;
    r.truncated = s.elapsed_steps >= max_episode_steps_;
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    float* o = row.Get<float>(0);
    o[0] = static_cast<float>(std::cos(s.s[0]));
    o[1] = static_cast<float>(std::sin(s.s[0]));
    o[2] = static_cast<float>(std::cos(s.s[1]));
    o[3] = static_cast<float>(std::sin(s.s[1]));
    o[4] = static_cast<float>(s.s[2]);
    o[5] = static_cast<float>(s.s[3]);
  }

  // Imported states are checked with this: Step's `wrap` loops must stay short.
  std::string CheckState(const State& s) const {
    if (!InDomain(s.s)) return "angles outside [-pi, pi] or velocities beyond their bounds";
    if (s.elapsed_steps < 0 || s.elapsed_steps > max_episode_steps_) {
      return "step count outside [0, max_episode_steps]";
    }
    return "";
  }

  std::string Render(const State& s) const {
    char line[200];
    const double tip = -std::cos(s.s[0]) - std::cos(s.s[1] + s.s[0]);
    std::snprintf(line, sizeof(line),
                  "theta1=%+.3f theta2=%+.3f dtheta1=%+.3f dtheta2=%+.3f  tip height=%+.3f "
                  "(goal > 1)  step=%d",
                  s.s[0], s.s[1], s.s[2], s.s[3], tip, s.elapsed_steps);
    return line;
  }

  // Gymnasium's 500 x 500 frame: a black bar at height 1 above the pivot
  // (the goal line), the two cyan links and yellow joints; the world spans
  // [-2.2, 2.2] around the pivot.
  FrameSize Frame() const { return {kScreen, kScreen}; }

  void Draw(const State& s, Canvas& canvas) const {
    canvas.Fill({255, 255, 255});
    const double scale = kScreen / (2 * (kLinkLength1 + kLinkLength2 + 0.2));
    const double offset = kScreen / 2.0;
    // Gymnasium draws y-up and flips the frame: canvas y = kScreen - y.
    auto flip = [](double y) { return kScreen - y; };
    const double bar = std::trunc(1 * scale + offset);  // a 1-pixel line, row `bar` before the flip
    canvas.FillRect(0, flip(bar + 1), kScreen, flip(bar), {0, 0, 0});
    // Link k starts at (x, y) and points along angle th (y-up).
    const double joints[2][2] = {
        {0.0, 0.0},
        {kLinkLength1 * std::sin(s.s[0]) * scale, -kLinkLength1 * std::cos(s.s[0]) * scale}};
    const double angles[2] = {s.s[0] - M_PI / 2, s.s[0] + s.s[1] - M_PI / 2};
    const double lengths[2] = {kLinkLength1 * scale, kLinkLength2 * scale};
    for (int k = 0; k < 2; ++k) {
      const double x = joints[k][0] + offset, y = joints[k][1] + offset;
      const double c = std::cos(angles[k]), sn = std::sin(angles[k]);
      const double lx[4] = {0, 0, lengths[k], lengths[k]};
      const double ly[4] = {-0.1 * scale, 0.1 * scale, 0.1 * scale, -0.1 * scale};
      double xs[4], ys[4];
      for (int j = 0; j < 4; ++j) {
        xs[j] = lx[j] * c - ly[j] * sn + x;
        ys[j] = flip(lx[j] * sn + ly[j] * c + y);
      }
      canvas.FillPolygon(xs, ys, 4, {0, 204, 204});
      // Gymnasium truncates the joint centres to whole pixels.
      canvas.FillCircle(std::trunc(x) + 0.5, flip(std::trunc(y) + 0.5), std::floor(0.1 * scale),
                        {204, 204, 0});
    }
  }

 private:
  static constexpr double kDt = 0.2;
  static constexpr double kLinkLength1 = 1.0;
  static constexpr double kLinkLength2 = 1.0;
  static constexpr double kLinkMass1 = 1.0;
  static constexpr double kLinkMass2 = 1.0;
  static constexpr double kLinkComPos1 = 0.5;
  static constexpr double kLinkComPos2 = 0.5;
  static constexpr double kLinkMoi = 1.0;
  static constexpr double kMaxVel1 = 4 * M_PI;
  static constexpr double kMaxVel2 = 9 * M_PI;
  static constexpr double kTorques[3] = {-1.0, 0.0, +1};
  static constexpr int kScreen = 500;

  // `x**2` for a NumPy float64 scalar: libm's pow(x, 2.0), as NumPy calls it.
  // The exponent is volatile so the compiler cannot rewrite the call as x * x.
  static double NumpySquare(double x) {
    volatile double two = 2.0;
    return std::pow(x, static_cast<double>(two));
  }

  // Gymnasium's _dsdt: the derivatives of (theta1, theta2, dtheta1, dtheta2)
  // with torque a, term by term. The constant factors (m2 * l1 * lc2 and the
  // like) are Python float products, evaluated left to right as Gymnasium does.
  void Derivs(const double* s, double a, double* out) const {
    constexpr double m1 = kLinkMass1, m2 = kLinkMass2, l1 = kLinkLength1;
    constexpr double lc1 = kLinkComPos1, lc2 = kLinkComPos2, I1 = kLinkMoi, I2 = kLinkMoi;
    constexpr double g = 9.8;
    const double theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
    // Python floats: lc1**2 etc. are exact here (powers of 0.5 and 1.0).
    constexpr double lc1_sq = lc1 * lc1, lc2_sq = lc2 * lc2, l1_sq = l1 * l1;
    const double d1 =
        m1 * lc1_sq + m2 * (l1_sq + lc2_sq + 2 * l1 * lc2 * std::cos(theta2)) + I1 + I2;
    const double d2 = m2 * (lc2_sq + l1 * lc2 * std::cos(theta2)) + I2;
    const double phi2 = m2 * lc2 * g * std::cos(theta1 + theta2 - M_PI / 2.0);
    const double phi1 = -m2 * l1 * lc2 * NumpySquare(dtheta2) * std::sin(theta2) -
                        2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * std::sin(theta2) +
                        (m1 * lc1 + m2 * l1) * g * std::cos(theta1 - M_PI / 2) + phi2;
    double ddtheta2;
    if (nips_) {
      ddtheta2 = (a + d2 / d1 * phi1 - phi2) / (m2 * lc2_sq + I2 - NumpySquare(d2) / d1);
    } else {
      ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * NumpySquare(dtheta1) * std::sin(theta2) -
                  phi2) /
                 (m2 * lc2_sq + I2 - NumpySquare(d2) / d1);
    }
    const double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    out[0] = dtheta1;
    out[1] = dtheta2;
    out[2] = ddtheta1;
    out[3] = ddtheta2;
  }

  // Gymnasium's wrap: subtract or add the period until x is in [m, M].
  static double Wrap(double x, double m, double M) {
    const double diff = M - m;
    while (x > M) x = x - diff;
    while (x < m) x = x + diff;
    return x;
  }
  // Gymnasium's bound: Python's min(max(x, m), M).
  static double Bound(double x, double m, double M) {
    const double lo = m > x ? m : x;
    return M < lo ? M : lo;
  }

  static bool InDomain(const double* v) {
    return v[0] >= -M_PI && v[0] <= M_PI && v[1] >= -M_PI && v[1] <= M_PI &&
           std::fabs(v[2]) <= kMaxVel1 && std::fabs(v[3]) <= kMaxVel2;
  }

  int32_t max_episode_steps_;
  bool nips_;
};

}  // namespace pyenvpool
