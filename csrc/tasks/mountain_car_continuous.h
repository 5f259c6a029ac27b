// MountainCarContinuous-v0, identical to Gymnasium's
// classic_control/continuous_mountain_car.py (gymnasium 1.x, wrapped in
// TimeLimit(999)).
//
// State: position in [-1.2, 0.6] and velocity in [-0.07, 0.07]. Action:
// Box(-1, 1, (1,)) float32, the force. Observation `obs` float32 [2]
// (position, velocity), within Gymnasium's float32 box. `terminated` when
// position >= 0.45 and velocity >= goal_velocity (default 0); truncated at 999
// steps (`max_episode_steps`). Reward: 100 on reaching the goal, minus
// 0.1 * action^2 on every step, computed from the action as given (not the
// clipped force). Reset: position ~ U(-0.6, -0.4), velocity 0.
//
// Exactness. Gymnasium runs the step on NumPy scalars of mixed dtypes, so its
// arithmetic is sometimes float64 and sometimes float32:
// - the state is a float64 array after reset but a float32 array after every
//   step (`np.array([position, velocity], dtype=np.float32)`), so the first
//   step of an episode is float64 arithmetic and the later ones float32;
// - the force is the float32 action, or a Python float where min/max clamp it
//   to -1.0 or 1.0;
// - a Python float meeting a float32 scalar is cast to float32 first (NumPy 2,
//   NEP 50), in arithmetic and in comparisons alike (so `position >= 0.45`
//   compares with float32(0.45) when position is a float32 scalar), while
//   float64 scalars promote.
// Num below carries each value with its NumPy type, and the step repeats
// Gymnasium's expressions in its order, so states, observations and flags
// match Gymnasium's bit for bit for float32 actions (the build turns off
// floating-point contraction; float32 is the dtype of Gymnasium's
// action_space, and the engine converts other dtypes to float32).
// The reward is Gymnasium's float64 value rounded to float32, the engine's
// reward dtype; a huge action (|a| > ~6e19) gives a reward beyond the float32
// range, which is saturated at -FLT_MAX (Gymnasium returns the float64
// value). Actions outside [-1, 1] are clamped for the dynamics, as Gymnasium
// does; NaN and infinity never get here (the bindings refuse them).
//
// reset(instances={"state": float64 [k, 2]}) starts from given (position,
// velocity) within the observation box, with a float64 state as after
// Gymnasium's reset.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/task.h"
#include "tasks/mountain_car.h"

namespace pyenvpool {

class MountainCarContinuous {
 public:
  static constexpr const char* kId = "MountainCarContinuous-v0";
  static constexpr int64_t kMinChunk = 2048;  // a step costs ~20 ns
  using Action = const float*;

  struct State {
    Rng rng;
    double position, velocity;
    bool float32_state;  // Gymnasium's state array is float32 (after a step), not float64
    int32_t elapsed_steps;
  };

  explicit MountainCarContinuous(Kwargs& kwargs) {
    max_episode_steps_ = static_cast<int32_t>(kwargs.Int("max_episode_steps", 999, 1, 1 << 30));
    goal_velocity_ = kwargs.Float("goal_velocity", 0.0, -kMaxSpeed, kMaxSpeed);
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Box({1}, {kMinAction}, {kMaxAction});
    // Gymnasium's bounds, float32 as its Box stores them.
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
    s.float32_state = false;
    s.elapsed_steps = 0;
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const double* v = row.Get<double>(0);
    if (!InBox(v[0], v[1])) {
      throw ValueError("'state' must be (position, velocity) within [-1.2, 0.6] x [-0.07, 0.07]");
    }
    s.position = v[0];
    s.velocity = v[1];
    s.float32_state = false;
    s.elapsed_steps = 0;
  }

  StepResult Step(State& s, const float* action) const {
    const Num::Type state_type = s.float32_state ? Num::kFloat32 : Num::kFloat64;
    Num position{s.position, state_type}, velocity{s.velocity, state_type};
    const Num a{action[0], Num::kFloat32};
    // force = min(max(action[0], self.min_action), self.max_action)
    Num force = a;
    if (Less(force, kMinAction)) force = Num::Py(kMinAction);
    if (Greater(force, kMaxAction)) force = Num::Py(kMaxAction);
    // velocity += force * self.power - 0.0025 * math.cos(3 * position)
    const double pull = 0.0025 * std::cos(Mul(Num::Py(3), position).value);
    velocity = Add(velocity, Sub(Mul(force, Num::Py(kPower)), Num::Py(pull)));
    if (Greater(velocity, kMaxSpeed)) velocity = Num::Py(kMaxSpeed);
    if (Less(velocity, -kMaxSpeed)) velocity = Num::Py(-kMaxSpeed);
    position = Add(position, velocity);
    if (Greater(position, kMaxPosition)) position = Num::Py(kMaxPosition);
    if (Less(position, kMinPosition)) position = Num::Py(kMinPosition);
    if (Equal(position, kMinPosition) && velocity.value < 0) velocity = Num::Py(0);
    StepResult r;
    // position >= goal_position and velocity >= goal_velocity (never NaN here)
    r.terminated = !Less(position, kGoalPosition) && !Less(velocity, goal_velocity_);
    // reward = 100.0 if terminated else 0; reward -= math.pow(action[0], 2) * 0.1
    const double reward = (r.terminated ? 100.0 : 0.0) - LibmSquare(a.value) * 0.1;
    r.reward = static_cast<float>(std::max(reward, static_cast<double>(-FLT_MAX)));
    // self.state = np.array([position, velocity], dtype=np.float32)
    s.position = static_cast<float>(position.value);
    s.velocity = static_cast<float>(velocity.value);
    s.float32_state = true;
    s.elapsed_steps += 1;
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
    return MountainCar::RenderTrack(s.position, s.velocity, kGoalPosition, s.elapsed_steps);
  }

  // Gymnasium's 600 x 400 frame, as MountainCar-v0's with the flag at 0.45.
  FrameSize Frame() const { return MountainCar::FrameOf(); }
  void Draw(const State& s, Canvas& canvas) const {
    MountainCar::DrawScene(canvas, s.position, kGoalPosition);
  }

 private:
  static constexpr double kMinAction = -1.0;
  static constexpr double kMaxAction = 1.0;
  static constexpr double kMinPosition = -1.2;
  static constexpr double kMaxPosition = 0.6;
  static constexpr double kMaxSpeed = 0.07;
  static constexpr double kGoalPosition = 0.45;
  static constexpr double kPower = 0.0015;

  // A NumPy 2 scalar as Gymnasium's step sees it: a float32 scalar, a float64
  // scalar, or a Python float (int). Arithmetic follows NEP 50: float64 wins;
  // float32 with a Python float is float32 (the Python float cast first);
  // two Python floats stay Python floats.
  struct Num {
    enum Type { kFloat32, kFloat64, kPython };
    double value;
    Type type;
    static Num Py(double v) { return {v, kPython}; }
  };
  template <class Op>
  static Num Apply(Num a, Num b, Op op) {
    if (a.type == Num::kFloat64 || b.type == Num::kFloat64) {
      return {op(a.value, b.value), Num::kFloat64};
    }
    if (a.type == Num::kPython && b.type == Num::kPython) return Num::Py(op(a.value, b.value));
    const float x = static_cast<float>(a.value), y = static_cast<float>(b.value);
    return {op(x, y), Num::kFloat32};  // a float32 operation, exact in float32
  }
  static Num Add(Num a, Num b) {
    return Apply(a, b, [](auto x, auto y) { return x + y; });
  }
  static Num Sub(Num a, Num b) {
    return Apply(a, b, [](auto x, auto y) { return x - y; });
  }
  static Num Mul(Num a, Num b) {
    return Apply(a, b, [](auto x, auto y) { return x * y; });
  }
  // Comparisons with a Python float: in float32 when `a` is a float32 scalar.
  static bool Less(Num a, double py) {
    if (a.type == Num::kFloat32) return static_cast<float>(a.value) < static_cast<float>(py);
    return a.value < py;
  }
  static bool Greater(Num a, double py) {
    if (a.type == Num::kFloat32) return static_cast<float>(a.value) > static_cast<float>(py);
    return a.value > py;
  }
  static bool Equal(Num a, double py) {
    if (a.type == Num::kFloat32) return static_cast<float>(a.value) == static_cast<float>(py);
    return a.value == py;
  }
  // math.pow(x, 2) calls libm's pow, which can differ from x * x in the last
  // bit; the exponent is volatile so the compiler cannot rewrite the call.
  static double LibmSquare(double x) {
    volatile double two = 2.0;
    return std::pow(x, static_cast<double>(two));
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
