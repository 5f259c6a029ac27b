// Squared-v0: PufferLib Ocean's `Squared` sanity task (the Python Ocean suite of
// PufferLib ~1.0, pufferlib/environments/ocean/ocean.py; not the later C env of
// that name, which has Discrete(5) moves and a uint8 grid).
//
// A (2d+1) x (2d+1) grid, d = `distance_to_target` (default 1, as PufferLib).
// Reset puts the agent at the centre and draws `num_targets` (default 4d)
// targets uniformly without replacement from the 8d perimeter cells.
// - Actions: Discrete(8), PufferLib's MOVES as (row, col) deltas, row 0 at the
//   top: 0 W (0,-1), 1 E (0,+1), 2 N (-1,0), 3 S (+1,0), 4 SW (+1,-1),
//   5 NW (-1,-1), 6 SE (+1,+1), 7 NE (-1,+1).
// - Step: move; reward = 1 - m / d, where m is the L-inf distance from the new
//   cell to the nearest target not yet hit (so reward is in [-1, 1], and 1 on a
//   hit); a target that is hit is removed; a move that reaches the perimeter,
//   hit or not, teleports the agent back to the centre. Between steps the agent
//   is strictly inside the perimeter, so no move can leave the grid.
// - `terminated` after max_ticks = num_targets * d steps; never truncated.
//   A hit needs d moves out from the centre, so the last target can be hit no
//   earlier than the last tick: before every step some target remains. The
//   best return, every target hit by a straight run, is num_targets (d + 1) / 2.
// - Observation `grid` float32 [2d+1, 2d+1]: -1 the agent, +1 a target not yet
//   hit, 0 otherwise.
// - multi_discrete=True (not in PufferLib; it exercises MultiDiscrete actions):
//   MultiDiscrete([3, 3]), (horizontal, vertical) each in {0, 1, 2} for a
//   move of -1, 0, +1 (column delta, then row delta, row 0 at the top): (1, 1)
//   stays put (it still costs a tick and earns the reward of the current
//   cell), the other 8 pairs are the 8 moves above. The default Discrete(8)
//   task is unchanged.
// - PufferLib's score, reported at the end of an episode, is the fraction of
//   targets hit: 1 - (number of +1 cells in info["final_obs"]["grid"]) /
//   num_targets. The trainer's evaluator reports it as `score`.
//
// Differences from PufferLib:
// - A target that is hit disappears from the observation. PufferLib leaves it
//   drawn as +1 (the line that clears it is commented out), so its observation
//   cannot tell targets hit from targets left.
// - Targets are drawn from the env's own RNG (PufferLib: Python's global
//   `random`): the same distribution, not the same draws.
// - num_targets is checked to be in [1, 8d] (PufferLib's random.sample fails
//   above 8d; -1 there means the default 4d).
// - Moves are not clamped to the grid, as in PufferLib: they never need to be.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class Squared {
 public:
  static constexpr const char* kId = "Squared-v0";
  static constexpr int64_t kMinChunk = 1024;  // a step with its obs costs ~10-50 ns at d <= 3
  static constexpr int kMaxDistance = 31;     // a 63 x 63 grid, 248 perimeter cells
  static constexpr int kTargetWords = (8 * kMaxDistance + 63) / 64;
  using Action = const int32_t*;  // Discrete(8): one component; MultiDiscrete([3, 3]): two

  struct State {
    Rng rng;
    int32_t tick;
    uint8_t row, col;                // the agent, strictly inside the perimeter
    uint64_t targets[kTargetWords];  // bit p: perimeter cell p holds a target not yet hit
  };

  explicit Squared(Kwargs& kwargs) {
    d_ = static_cast<int>(kwargs.Int("distance_to_target", 1, 1, kMaxDistance));
    num_targets_ = static_cast<int>(kwargs.Int("num_targets", 4 * d_, 1, 8 * d_));
    multi_discrete_ = kwargs.Bool("multi_discrete", false);
    kwargs.CheckAllUsed(kId);
    side_ = 2 * d_ + 1;
    num_perimeter_ = 8 * d_;
    max_ticks_ = num_targets_ * d_;
    // Perimeter cells in row-major order (PufferLib's possible_targets order).
    int p = 0;
    for (int r = 0; r < side_; ++r) {
      for (int c = 0; c < side_; ++c) {
        if (!OnPerimeter(r, c)) continue;
        cell_row_[p] = static_cast<uint8_t>(r);
        cell_col_[p] = static_cast<uint8_t>(c);
        ++p;
      }
    }
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = multi_discrete_ ? ActionSpec::MultiDiscrete({3, 3}) : ActionSpec::Discrete(8);
    spec.obs_fields.push_back({"grid", DType::kFloat32, {side_, side_}, {-1.0}, {1.0}});
    return spec;
  }

  void Reset(State& s) const {
    s.tick = 0;
    s.row = s.col = static_cast<uint8_t>(d_);
    std::memset(s.targets, 0, sizeof(s.targets));
    // The first num_targets entries of a partial Fisher-Yates shuffle.
    uint8_t cells[8 * kMaxDistance];
    for (int p = 0; p < num_perimeter_; ++p) cells[p] = static_cast<uint8_t>(p);
    for (int i = 0; i < num_targets_; ++i) {
      const int j = i + static_cast<int>(s.rng.Below(static_cast<uint32_t>(num_perimeter_ - i)));
      const uint8_t chosen = cells[j];
      cells[j] = cells[i];
      cells[i] = chosen;
      s.targets[chosen >> 6] |= uint64_t{1} << (chosen & 63);
    }
  }

  StepResult Step(State& s, const int32_t* action) const {
    const int dr = multi_discrete_ ? action[1] - 1 : kMoves[action[0]][0];
    const int dc = multi_discrete_ ? action[0] - 1 : kMoves[action[0]][1];
    const int r = s.row + dr;
    const int c = s.col + dc;
    // Some target always remains before a step (see above); 0 is only a guard.
    int nearest = kNoTarget;
    for (int w = 0; w < kTargetWords; ++w) {
      for (uint64_t bits = s.targets[w]; bits != 0; bits &= bits - 1) {
        const int p = w * 64 + __builtin_ctzll(bits);
        const int dist = Linf(r, c, cell_row_[p], cell_col_[p]);
        nearest = dist < nearest ? dist : nearest;
      }
    }
    if (nearest == kNoTarget) nearest = 0;
    StepResult out;
    out.reward = static_cast<float>(1.0 - static_cast<double>(nearest) / d_);
    if (OnPerimeter(r, c)) {
      const int p = PerimeterIndex(r, c);
      s.targets[p >> 6] &= ~(uint64_t{1} << (p & 63));
      s.row = s.col = static_cast<uint8_t>(d_);  // teleport to the centre
    } else {
      s.row = static_cast<uint8_t>(r);
      s.col = static_cast<uint8_t>(c);
    }
    s.tick += 1;
    out.terminated = s.tick >= max_ticks_;
    return out;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    float* grid = row.Get<float>(0);
    std::memset(grid, 0, sizeof(float) * side_ * side_);
    for (int w = 0; w < kTargetWords; ++w) {
      for (uint64_t bits = s.targets[w]; bits != 0; bits &= bits - 1) {
        const int p = w * 64 + __builtin_ctzll(bits);
        grid[cell_row_[p] * side_ + cell_col_[p]] = 1.0f;
      }
    }
    grid[s.row * side_ + s.col] = -1.0f;
  }

  // Imported states are checked with this: Step and WriteObs index the grid
  // with the agent's cell and the target bits.
  std::string CheckState(const State& s) const {
    if (Linf(s.row, s.col, d_, d_) >= d_) return "agent not strictly inside the perimeter";
    if (s.tick < 0 || s.tick > max_ticks_) return "tick outside [0, max_ticks]";
    for (int p = num_perimeter_; p < 64 * kTargetWords; ++p) {
      if ((s.targets[p >> 6] >> (p & 63)) & 1) return "target bit beyond the perimeter";
    }
    return "";
  }

  std::string Render(const State& s) const {
    // One character per cell: '.' empty, 'T' a target not yet hit, 'A' the agent.
    std::string out;
    int left = 0;
    for (int r = 0; r < side_; ++r) {
      for (int c = 0; c < side_; ++c) {
        char ch = '.';
        if (OnPerimeter(r, c)) {
          const int p = PerimeterIndex(r, c);
          if ((s.targets[p >> 6] >> (p & 63)) & 1) {
            ch = 'T';
            ++left;
          }
        }
        if (r == s.row && c == s.col) ch = 'A';
        out += ch;
      }
      out += '\n';
    }
    out += "tick " + std::to_string(s.tick) + "/" + std::to_string(max_ticks_) + "  targets hit " +
           std::to_string(num_targets_ - left) + "/" + std::to_string(num_targets_);
    return out;
  }

  // Square cells of up to 64 pixels (a 3 x 3 grid is 192 x 192), within 360
  // pixels a side for larger grids, and a progress bar below.
  FrameSize Frame() const { return {side_ * Cell() + kBar, side_ * Cell()}; }

  // The grid (perimeter cells grey), the targets not yet hit as red
  // squares, the agent as a blue disc, and below a bar of the ticks taken out
  // of max_ticks.
  void Draw(const State& s, Canvas& canvas) const {
    const int cell = Cell(), size = side_ * cell;
    canvas.Fill({255, 255, 255});
    canvas.FillRect(0, 0, size, size, {232, 232, 232});
    canvas.FillRect(cell, cell, size - cell, size - cell, {255, 255, 255});
    for (int k = 0; k <= side_; ++k) {  // grid lines
      canvas.FillRect(k * cell - 0.5, 0, k * cell + 0.5, size, {190, 190, 190});
      canvas.FillRect(0, k * cell - 0.5, size, k * cell + 0.5, {190, 190, 190});
    }
    const double inset = 0.15 * cell;
    for (int w = 0; w < kTargetWords; ++w) {
      for (uint64_t bits = s.targets[w]; bits != 0; bits &= bits - 1) {
        const int p = w * 64 + __builtin_ctzll(bits);
        const int r = cell_row_[p], c = cell_col_[p];
        canvas.FillRect(c * cell + inset, r * cell + inset, (c + 1) * cell - inset,
                        (r + 1) * cell - inset, {220, 60, 40});
      }
    }
    canvas.FillCircle((s.col + 0.5) * cell, (s.row + 0.5) * cell, 0.35 * cell, {40, 90, 220});
    canvas.FillRect(0, size, size, size + kBar, {215, 215, 215});
    const double done = std::clamp(static_cast<double>(s.tick) / max_ticks_, 0.0, 1.0);
    canvas.FillRect(0, size + 1, done * size, size + kBar, {90, 90, 90});
  }

 private:
  static constexpr int kBar = 8;  // pixels of the progress bar
  static constexpr int kMoves[8][2] = {{0, -1}, {0, 1},   {-1, 0}, {1, 0},
                                       {1, -1}, {-1, -1}, {1, 1},  {-1, 1}};
  static constexpr int kNoTarget = 1 << 30;

  static int Linf(int r0, int c0, int r1, int c1) {
    const int dr = std::abs(r0 - r1), dc = std::abs(c0 - c1);
    return dr > dc ? dr : dc;
  }
  bool OnPerimeter(int r, int c) const { return Linf(r, c, d_, d_) == d_; }
  // The row-major index of perimeter cell (r, c) among the 8d perimeter cells.
  int PerimeterIndex(int r, int c) const {
    if (r == 0) return c;
    if (r == side_ - 1) return side_ + 2 * (side_ - 2) + c;
    return side_ + 2 * (r - 1) + (c == 0 ? 0 : 1);
  }

  int Cell() const { return std::max(5, std::min(64, 360 / side_)); }

  int d_;
  int num_targets_;
  bool multi_discrete_;
  int side_;
  int num_perimeter_;
  int32_t max_ticks_;
  uint8_t cell_row_[64 * kTargetWords] = {};  // perimeter cell p is (cell_row_[p], cell_col_[p])
  uint8_t cell_col_[64 * kTargetWords] = {};
};

}  // namespace pyenvpool
