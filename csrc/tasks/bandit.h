// Bandit-v0: PufferLib Ocean's `Bandit` sanity task (the Python Ocean suite of
// PufferLib ~1.0, pufferlib/environments/ocean/ocean.py): a multi-armed bandit
// whose episodes are a single pull. It tests one-step credit assignment.
//
// - Observation `obs` float32 [1], always 1.0 (bounds [-1, 1], PufferLib's Box).
// - Actions: Discrete(num_arms), default 4. Every step is terminated.
// - Reward: (1 if the action is `solution_arm` else 0, plus reward_noise * N(0, 1))
//   * reward_scale. The defaults (noise 0, scale 1) give 1 or 0, so the episode
//   return is PufferLib's info["score"].
// - `solution_arm` is fixed by the configuration: the same for every env and
//   every seed, as PufferLib's hard_fixed_seed makes it (the trainer evaluates on
//   a pool with another seed, which must face the same bandit). Its default is
//   the arm PufferLib draws, np.random.seed(42); np.random.randint(0, num_arms):
//   arm 2 of 4. numpy's legacy randint masks 32-bit MT19937 outputs to the
//   smallest all-ones mask covering num_arms - 1 and rejects values above it.
//   PufferLibArm holds the first outputs of MT19937 seeded with 42; the first
//   three already decide for every num_arms up to 2^20 (more than kMaxArms).
//   tests/tasks/test_bandit.py compares the default with numpy's draw.
//
// Differences from PufferLib:
// - PufferLib adds randn * reward_scale whenever reward_noise != 0 (the value of
//   reward_noise only switches noise on) and then scales again; here
//   reward_noise is the standard deviation before scaling, as its docstring says.
// - The kwarg is `num_arms` (PufferLib: num_actions), and `solution_arm` replaces
//   hard_fixed_seed. There is no info["score"] (see above).
// - Noise, when on, comes from the env's own RNG (a Box-Muller normal), so it is
//   part of the snapshot; without noise a step draws nothing.
// - The state remembers the last pull (not part of the observation) so that
//   rgb frames can show it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class Bandit {
 public:
  static constexpr const char* kId = "Bandit-v0";
  static constexpr int64_t kMinChunk = 4096;  // a step costs a few ns
  static constexpr int64_t kMaxArms = 1 << 16;

  struct State {
    Rng rng;          // drawn from only when reward_noise > 0
    int32_t last_arm;  // the arm of the last pull, for Draw: kept across resets
    uint8_t pulled;    // 0 until the env's first step
  };

  explicit Bandit(Kwargs& kwargs) {
    num_arms_ = static_cast<int32_t>(kwargs.Int("num_arms", 4, 1, kMaxArms));
    solution_arm_ =
        static_cast<int32_t>(kwargs.Int("solution_arm", PufferLibArm(num_arms_), 0, num_arms_ - 1));
    reward_scale_ = kwargs.Float("reward_scale", 1.0, -1e6, 1e6);
    reward_noise_ = kwargs.Float("reward_noise", 0.0, 0.0, 1e6);
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(num_arms_);
    spec.obs_fields.push_back({"obs", DType::kFloat32, {1}, {-1.0}, {1.0}});
    return spec;
  }

  void Reset(State& /*s*/) const {}

  StepResult Step(State& s, int32_t action) const {
    double reward = action == solution_arm_ ? 1.0 : 0.0;
    if (reward_noise_ > 0) reward += reward_noise_ * Normal(s.rng);
    s.last_arm = action;
    s.pulled = 1;
    StepResult r;
    r.reward = static_cast<float>(reward * reward_scale_);
    r.terminated = true;
    return r;
  }

  void WriteObs(const State& /*s*/, const ObsRow& row) const { *row.Get<float>(0) = 1.0f; }

  std::string Render(const State& /*s*/) const {
    return std::to_string(num_arms_) + " arms; arm " + std::to_string(solution_arm_) + " pays 1";
  }

  // A column of 48 pixels per arm, the frame at least 192 and at most 768
  // pixels wide (beyond 16 arms the columns narrow; beyond 768 arms a gold
  // pixel column marks the paying arm in one grey band).
  FrameSize Frame() const {
    return {kFrameHeight, std::max(192, std::min(768, 48 * num_arms_))};
  }

  // The arms as grey bars, the paying arm gold; under the arm pulled last a
  // marker, green if it was the paying arm and red if not; arm numbers under
  // the arms when there is room.
  void Draw(const State& s, Canvas& canvas) const {
    const double width = canvas.width(), arm = width / num_arms_;
    canvas.Fill({250, 250, 250});
    if (arm >= 1) {
      for (int a = 0; a < num_arms_; ++a) {
        canvas.FillRect((a + 0.15) * arm, 24, (a + 0.85) * arm, 104, {150, 150, 150});
      }
    } else {
      canvas.FillRect(0, 24, width, 104, {150, 150, 150});
    }
    const double gold_left = solution_arm_ * arm;
    canvas.FillRect(gold_left + 0.15 * arm, 24, gold_left + std::max(1.0, 0.85 * arm), 104,
                    {240, 180, 20});
    if (s.pulled != 0) {
      const double left = std::clamp(s.last_arm, 0, num_arms_ - 1) * arm;
      const Color marker = s.last_arm == solution_arm_ ? Color{40, 170, 60} : Color{210, 50, 40};
      canvas.FillRect(left, 112, left + std::max(1.0, arm), 124, marker);
    }
    if (arm >= 16) {
      char label[16];
      for (int a = 0; a < num_arms_; ++a) {
        std::snprintf(label, sizeof(label), "%d", a);
        const double x = (a + 0.5) * arm - Canvas::TextWidth(label, 2) / 2;
        canvas.Text(x, 132, label, 2, {60, 60, 60});
      }
    }
  }

  // The arm of np.random.seed(42); np.random.randint(0, num_arms), see above.
  static int32_t PufferLibArm(int64_t num_arms) {
    static constexpr uint32_t kMt19937Seed42[] = {0x5fe1dc66, 0xcbea3db3, 0xf362035c,
                                                  0x2ef5950e, 0xbb63f46a, 0xc799d447};
    const uint32_t max = static_cast<uint32_t>(num_arms - 1);
    uint32_t mask = max;
    for (int shift = 1; shift < 32; shift <<= 1) mask |= mask >> shift;
    for (uint32_t word : kMt19937Seed42) {
      if ((word & mask) <= max) return static_cast<int32_t>(word & mask);
    }
    return 0;  // unreachable for num_arms <= kMaxArms
  }

 private:
  // A standard normal from two uniforms (Box-Muller); 1 - u is in (0, 1].
  static double Normal(Rng& rng) {
    const double u = 1.0 - rng.Uniform();
    const double v = rng.Uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
  }

  static constexpr int kFrameHeight = 152;

  int32_t num_arms_;
  int32_t solution_arm_;
  double reward_scale_;
  double reward_noise_;
};

}  // namespace pyenvpool
