// What the MuJoCo locomotion tasks (HalfCheetah, Hopper, Walker2d, Ant, all
// Gymnasium v5) share: the model, the physics state kept in each env's State,
// reset and reset(instances=...), one physics step, and numpy's exact
// arithmetic for the reward terms.
//
// How a MuJoCo env fits the task concept (a State is trivially copyable and a
// snapshot is a byte copy): the State holds the physics state vector that
// mj_getState writes for kSignature -- time, qpos, qvel, act and the solver's
// warmstart acceleration -- plus the RNG and counters. Step borrows a scratch
// mjData from the shared model (one per thread in practice), loads the vector
// into it with mj_setState, applies the action as ctrl, calls mj_step
// frame_skip times and reads the vector back. The warmstart matters: without
// it a restored env converges the constraint solver from another start and
// drifts from the env that never stopped (measured: diverging within 1 to 11
// steps); with it, stepping a restored copy is bit-identical to continuing.
// Every other mjData input (qfrc_applied, xfrc_applied, mocap, eq_active) is
// zero or the model's default in every scratch mjData, as in a fresh
// Gymnasium env, so the vector determines the future completely.
//
// Numerics: the reward terms follow Gymnasium's numpy expressions operation
// by operation. The control cost is float32 (the action is float32, numpy
// squares and sums it in float32 with its 8-way pairwise summation, and a
// Python float weight times a float32 stays float32); the other terms are
// float64. The build turns off contraction (-ffp-contract=off).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/task.h"
#include "mujoco/runtime.h"

namespace pyenvpool::mujoco {

// The physics state each env carries.
inline constexpr int kSignature = mjSTATE_FULLPHYSICS | mjSTATE_WARMSTART;

// numpy's sum of n contiguous values (pairwise_sum in its loops): fewer than
// 8 values left to right, otherwise 8 running sums combined as a tree, then
// the remainder; blocks of 128 and more are split in halves.
template <class T>
T NumpySum(const T* a, int64_t n) {
  if (n < 8) {
    T res = -0.0;  // numpy starts from -0.0 so that a sum of -0.0 stays -0.0
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return NumpySum(a, n2) + NumpySum(a + n2, n - n2);
}

// A standard normal draw (Marsaglia's polar method, one value per call), for
// Gymnasium's standard_normal reset noise: the same distribution, not the
// same numbers (Gymnasium draws from its own numpy generator). The rejection
// loop is bounded, so even a degenerate generator state (an imported blob of
// zeros) cannot hang a reset; a real one is rejected 64 times in a row with
// probability 0.215^64, about 1e-43.
inline double StandardNormal(Rng& rng) {
  for (int tries = 0; tries < 64; ++tries) {
    const double u = rng.Uniform(-1.0, 1.0);
    const double v = rng.Uniform(-1.0, 1.0);
    const double s = u * u + v * v;
    if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
  }
  return 0.0;
}

// Clamps like np.clip: NaN stays NaN.
inline double Clip(double x, double low, double high) {
  return x < low ? low : (x > high ? high : x);
}

inline void CheckFinite(const double* v, int n, const char* name) {
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) throw ValueError(std::string("'") + name + "' must be finite");
  }
}

// The model of one task and the physics operations on a state vector.
// kNq, kNv, kNu: the shipped model's sizes, checked when the model loads, so
// the States are fixed-size arrays.
template <int kNq, int kNv, int kNu>
class Physics {
 public:
  static constexpr int kStateSize = 1 + kNq + kNv + kNv;  // time, qpos, qvel, warmstart
  static constexpr int kQpos = 1;                         // offsets in the vector
  static constexpr int kQvel = 1 + kNq;

  Physics(const char* task_id, const char* file, int frame_skip)
      : model_(Model::Get(task_id, file)), api_(&Api()), frame_skip_(frame_skip) {
    const mjModel* m = model_->m();
    if (m->nq != kNq || m->nv != kNv || m->nu != kNu || m->na != 0 ||
        api_->mj_stateSize(m, kSignature) != kStateSize) {
      throw std::logic_error(std::string(task_id) + ": " + file +
                             " does not have the sizes the task was written for");
    }
    dt_ = m->opt.timestep * frame_skip;  // Gymnasium's dt, the same product
  }

  const mjModel* m() const { return model_->m(); }
  const Functions& api() const { return *api_; }
  double dt() const { return dt_; }

  // Gymnasium's Box: the actuators' ctrlrange, rounded to float32.
  ActionSpec Action() const {
    std::vector<double> low(kNu), high(kNu);
    for (int i = 0; i < kNu; ++i) {
      low[i] = static_cast<float>(m()->actuator_ctrlrange[2 * i]);
      high[i] = static_cast<float>(m()->actuator_ctrlrange[2 * i + 1]);
    }
    return ActionSpec::Box({kNu}, low, high);
  }

  // reset(instances={"qpos": float64 [k, nq], "qvel": float64 [k, nv]}), and
  // the check of one row: both finite, or a ValueError.
  static std::vector<FieldSpec> InstanceFields() {
    return {{"qpos", DType::kFloat64, {kNq}}, {"qvel", DType::kFloat64, {kNv}}};
  }
  static void CheckInstance(const InstanceRow& row) {
    CheckFinite(row.Get<double>(0), kNq, "qpos");
    CheckFinite(row.Get<double>(1), kNv, "qvel");
  }

  // Gymnasium's reset noise on the positions: qpos = qpos0 + U(-scale, scale),
  // one draw per element in order.
  void NoisyQpos(Rng& rng, double scale, double* qpos) const {
    for (int i = 0; i < kNq; ++i) qpos[i] = m()->qpos0[i] + rng.Uniform(-scale, scale);
  }

  // Gymnasium's reset: mj_resetData, then set_state(qpos, qvel), which runs
  // mj_forward. Writes the state vector; `d` keeps the forward results
  // (body positions) for the caller.
  void Start(double* state, const double* qpos, const double* qvel, mjData* d) const {
    api_->mj_resetData(m(), d);
    std::memcpy(d->qpos, qpos, sizeof(double) * kNq);
    std::memcpy(d->qvel, qvel, sizeof(double) * kNv);
    api_->mj_forward(m(), d);
    api_->mj_getState(m(), d, state, kSignature);
  }
  void Start(double* state, const double* qpos, const double* qvel) const {  // own scratch
    Start(state, qpos, qvel, Borrow().get());
  }

  // Gymnasium's do_simulation: ctrl = action (float32 to float64; MuJoCo
  // clamps it to ctrlrange inside the step), mj_step frame_skip times.
  // Leaves the last step's intermediate results (xpos, forces) in `d`.
  void Advance(double* state, const float* action, mjData* d) const {
    api_->mj_setState(m(), d, state, kSignature);
    for (int i = 0; i < kNu; ++i) d->ctrl[i] = action[i];
    for (int k = 0; k < frame_skip_; ++k) api_->mj_step(m(), d);
    api_->mj_getState(m(), d, state, kSignature);
  }
  void Advance(double* state, const float* action) const {  // own scratch
    Advance(state, action, Borrow().get());
  }

  Model::Scratch Borrow() const { return Model::Scratch(*model_); }

 private:
  std::shared_ptr<Model> model_;
  const Functions* api_;
  int frame_skip_;
  double dt_;
};

// Gymnasium's control cost: weight * np.sum(np.square(action)), float32.
template <int kNu>
float ControlCost(float weight, const float* action) {
  float squares[kNu];
  for (int i = 0; i < kNu; ++i) squares[i] = action[i] * action[i];
  return weight * NumpySum(squares, kNu);
}

// A float64 info field (see FieldSpec::info): one value per env, or `shape`.
inline FieldSpec InfoField(const char* name, std::vector<int64_t> shape = {}) {
  FieldSpec f{name, DType::kFloat64, std::move(shape)};
  f.info = true;
  return f;
}


}  // namespace pyenvpool::mujoco
