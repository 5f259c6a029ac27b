// Memory-v0: recall a cue after a delay. A probe for recurrent policies, in
// the spirit of PufferLib Ocean's memory env and POPGym's repeat-previous
// tasks (the design here is this project's own).
//
// An episode is delay + 1 steps, t = 0, 1, ..., delay (`delay`, default 8;
// `num_cues` K, default 4). Reset draws the cue c uniformly from {0, ..., K-1}.
// - Observation `obs` float32 [K + 1], what the agent sees before acting at t:
//     t = 0:           the cue, one-hot in entries 0..K-1;
//     0 < t < delay:   all zeros;
//     t = delay:       the query flag, entry K, = 1 (everything else 0).
//   With delay = 0 the cue and the query come together (no memory needed).
//   After the episode's last step (a final observation) it is all zeros.
// - Action: Discrete(K), a guess of the cue. Actions before the query are
//   ignored (reward 0); the action taken on seeing the query is the answer:
//   reward 1 if it equals the cue, else 0, and the episode terminates. Never
//   truncated. The return is 1 or 0, so the mean return is the success rate.
// - Memoryless policies score chance, exactly 1/K (0.25 by default): from t = 1
//   on the observations do not depend on the cue, so a policy that sees only
//   the current observation answers the query independently of the cue. A
//   policy that remembers the first observation scores 1.
//
// reset(instances={"cue": int32 [k]}) starts episodes with given cues.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class Memory {
 public:
  static constexpr const char* kId = "Memory-v0";
  static constexpr int64_t kMinChunk = 4096;  // a step costs a few ns
  static constexpr int kMaxCues = 64;

  struct State {
    Rng rng;
    int32_t cue;
    int32_t t;       // steps taken; delay + 1 once the query is answered
    int32_t answer;  // the answer given at the query, -1 before it (drawn)
  };

  explicit Memory(Kwargs& kwargs) {
    num_cues_ = static_cast<int32_t>(kwargs.Int("num_cues", 4, 2, kMaxCues));
    delay_ = static_cast<int32_t>(kwargs.Int("delay", 8, 0, 100000));
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(num_cues_);
    spec.obs_fields.push_back({"obs", DType::kFloat32, {num_cues_ + 1}, {0.0}, {1.0}});
    spec.instance_fields.push_back({"cue", DType::kInt32, {}});
    return spec;
  }

  void Reset(State& s) const {
    s.cue = s.rng.Range(0, num_cues_);
    s.t = 0;
    s.answer = -1;
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const int32_t cue = *row.Get<int32_t>(0);
    if (cue < 0 || cue >= num_cues_) {
      throw ValueError("'cue' must be in [0, " + std::to_string(num_cues_) + "), got " +
                       std::to_string(cue));
    }
    s.cue = cue;
    s.t = 0;
    s.answer = -1;
  }

  StepResult Step(State& s, int32_t action) const {
    StepResult r;
    if (s.t == delay_) {
      s.answer = action;
      r.reward = action == s.cue ? 1.0f : 0.0f;
      r.terminated = true;
    }
    s.t += 1;
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    float* o = row.Get<float>(0);
    std::memset(o, 0, sizeof(float) * (num_cues_ + 1));
    if (s.t == 0) o[s.cue] = 1.0f;
    if (s.t == delay_) o[num_cues_] = 1.0f;
  }

  // Imported states are checked with this: WriteObs indexes with the cue.
  std::string CheckState(const State& s) const {
    if (s.cue < 0 || s.cue >= num_cues_) return "cue outside [0, num_cues)";
    if (s.t < 0 || s.t > delay_ + 1) return "step count outside [0, delay + 1]";
    if (s.answer < -1 || s.answer >= num_cues_ || (s.answer >= 0) != (s.t > delay_)) {
      return "answer inconsistent with the step count";
    }
    return "";
  }

  std::string Render(const State& s) const {
    std::string seen = "nothing";
    if (s.t == 0) seen = "the cue " + std::to_string(s.cue);
    if (s.t == delay_) seen = s.t == 0 ? seen + " and the query" : "the query";
    if (s.t > delay_) {
      seen = "the end: answered " + std::to_string(s.answer) +
             (s.answer == s.cue ? " (right)" : " (wrong)");
    }
    return "step " + std::to_string(s.t) + "/" + std::to_string(delay_) + ", the agent sees " +
           seen + "  [cue " + std::to_string(s.cue) + "]";
  }

  // A row of K cells: the cue's cell lit in its colour while the agent sees it
  // (t = 0), dark otherwise; a progress bar through the delay; a yellow frame
  // around the row at the query; after the answer, its cell green (right) or
  // red (wrong).
  FrameSize Frame() const { return {kCell + 3 * kMargin + kBar, Width()}; }

  void Draw(const State& s, Canvas& canvas) const {
    canvas.Fill({40, 40, 40});
    const double cell = CellWidth();
    const double top = kMargin, bottom = kMargin + kCell;
    if (s.t == delay_) {
      canvas.FillRect(kMargin - 4, top - 4, kMargin + cell * num_cues_ + 4, bottom + 4,
                      {230, 200, 40});
    }
    for (int k = 0; k < num_cues_; ++k) {
      const double x0 = kMargin + k * cell;
      canvas.FillRect(x0 + 1, top, x0 + cell - 1, bottom, {90, 90, 90});
      Color fill{20, 20, 20};
      if (s.t == 0 && k == s.cue) fill = kPalette[k % 8];
      if (s.t > delay_ && k == s.answer) {
        fill = s.answer == s.cue ? Color{40, 200, 60} : Color{220, 40, 40};
      }
      canvas.FillRect(x0 + 3, top + 2, x0 + cell - 3, bottom - 2, fill);
    }
    const double bar_top = bottom + kMargin, width = cell * num_cues_;
    canvas.FillRect(kMargin, bar_top, kMargin + width, bar_top + kBar, {70, 70, 70});
    const int32_t elapsed = s.t > delay_ ? delay_ : s.t;
    const double done = delay_ == 0 ? 1.0 : static_cast<double>(elapsed) / delay_;
    canvas.FillRect(kMargin, bar_top, kMargin + width * done, bar_top + kBar, {230, 230, 230});
  }

 private:
  static constexpr int kCell = 40;    // cell height, and width up to 16 cues
  static constexpr int kMargin = 10;
  static constexpr int kBar = 8;
  static constexpr Color kPalette[8] = {{230, 60, 60},  {60, 120, 230}, {60, 200, 90},
                                        {240, 200, 40}, {190, 80, 220}, {40, 210, 210},
                                        {250, 140, 40}, {240, 240, 240}};

  // Cells shrink beyond 16 cues so that the frame stays at most 660 wide.
  double CellWidth() const { return num_cues_ <= 16 ? kCell : 640.0 / num_cues_; }
  int Width() const { return static_cast<int>(2 * kMargin + CellWidth() * num_cues_ + 0.5); }

  int32_t num_cues_;
  int32_t delay_;
};

}  // namespace pyenvpool
