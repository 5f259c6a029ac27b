// Maze-v0, a port of Jumanji 1.1.2 `Maze-v0`
// (jumanji/environments/routing/maze/{env,generator}.py and
// jumanji/environments/commons/maze_utils/maze_generation.py).
//
// Dynamics (bit-for-bit with Jumanji, checked by tests/tasks/test_maze.py):
// - Actions 0..3 = Up, Right, Down, Left as (row, col) deltas (-1,0) (0,1)
//   (1,0) (0,-1), row 0 at the top. A move is legal when the destination is
//   inside the grid and not a wall; an illegal move leaves the agent where it
//   is (Jumanji's action 4, the no-op) and still counts as a step.
// - step_count increases on every step; reward is 1 on the step that reaches
//   the target, else 0.
// - terminated: the target is reached, or no move is legal from the new cell
//   (Jumanji's `~any(action_mask)`; only a loaded instance can do that).
//   With invalid_action="terminate" an illegal move also terminates (reward
//   0): the rust_rl "one strike" variant.
// - truncated: step_count >= time_limit (default num_rows * num_cols = 100, as
//   Jumanji's code; its docs say twice that). Jumanji calls this a termination
//   (discount 0); we report it as truncation, the Gymnasium convention. As in
//   Gymnasium's TimeLimit (and CartPole-v1 here), a step that reaches the
//   target exactly at the limit is both terminated and truncated.
//
// Generator: Jumanji's recursive division, drawn from our own Rng, so mazes
// match Jumanji in distribution, not key for key (its threefry streams cannot
// be reproduced outside JAX). Chambers (x, y, width, height) are split in
// LIFO order: a chamber at least as wide as it is tall gets a vertical wall
// at a random odd offset with a passage at a random even offset, otherwise a
// horizontal wall likewise; sub-chambers with both sides > 1 are pushed, the
// first chamber (the whole grid) always. The result is a perfect maze over
// the (even, even) cells. Agent and target are an ordered pair of distinct
// free cells drawn uniformly, which is what Jumanji's weighted choice without
// replacement (Gumbel top-2 with weights ~walls) amounts to.
//
// State layout (a snapshot is a plain copy): walls are one bit per cell,
// row-major over the configured grid (bit r * num_cols + c), in a fixed
// 32 x 32 = 1024-bit array; the action mask of the agent's cell is kept as 4
// bits, as Jumanji keeps it in its state, so a step tests one bit and only
// recomputes the mask after a move.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/task.h"

namespace pyenvpool {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "Maze::WriteObs reads the wall words as bytes in cell order");

// kBitsToBools.v[b]: byte j is bit j of b (0 or 1), i.e. 8 bools in memory order.
struct MazeExpandTable {
  uint64_t v[256];
};
constexpr MazeExpandTable MakeMazeExpandTable() {
  MazeExpandTable t{};
  for (int b = 0; b < 256; ++b) {
    for (int j = 0; j < 8; ++j) t.v[b] |= static_cast<uint64_t>((b >> j) & 1) << (8 * j);
  }
  return t;
}
inline constexpr MazeExpandTable kBitsToBools = MakeMazeExpandTable();

class Maze {
 public:
  static constexpr const char* kId = "Maze-v0";
  static constexpr int64_t kMinChunk = 2048;  // a step with its obs costs ~15-25 ns
  static constexpr int kMaxSide = 32;
  static constexpr int kMaxCells = kMaxSide * kMaxSide;

  // Step and WriteObs touch the first 16 bytes and the first wall words; the
  // Rng, which only Reset uses, goes last. On a 10 x 10 grid a step stays
  // within the first 32 bytes of the 176-byte state.
  struct State {
    int32_t step_count;
    uint8_t agent_row, agent_col;
    uint8_t target_row, target_col;
    uint8_t action_mask;             // bit a: action a is legal from the agent's cell
    uint64_t walls[kMaxCells / 64];  // bit r * num_cols + c set: wall
    Rng rng;                         // only the generator draws from it
  };

  explicit Maze(Kwargs& kwargs) {
    rows_ = static_cast<int>(kwargs.Int("num_rows", 10, 1, kMaxSide));
    cols_ = static_cast<int>(kwargs.Int("num_cols", 10, 1, kMaxSide));
    // Jumanji: `time_limit or num_rows * num_cols`.
    time_limit_ = static_cast<int32_t>(kwargs.Int("time_limit", rows_ * cols_, 1, 1 << 30));
    terminate_on_invalid_ =
        kwargs.Choice("invalid_action", "noop", {"noop", "terminate"}) == "terminate";
    kwargs.CheckAllUsed(kId);
    if (rows_ * cols_ < 2) {
      // Jumanji fails too: agent and target need two distinct free cells.
      throw ValueError("Maze-v0 needs num_rows * num_cols >= 2, got " + std::to_string(rows_) +
                       " x " + std::to_string(cols_));
    }
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(4);
    const std::vector<double> low = {0, 0};
    const std::vector<double> high = {double(rows_ - 1), double(cols_ - 1)};
    spec.obs_fields = {
        {"walls", DType::kBool, {rows_, cols_}, {0}, {1}},
        {"agent_position", DType::kInt32, {2}, low, high},
        {"target_position", DType::kInt32, {2}, low, high},
        {"step_count", DType::kInt32, {}, {0}, {double(time_limit_)}},
        {"action_mask", DType::kBool, {4}, {0}, {1}},
    };
    spec.instance_fields = {
        {"walls", DType::kBool, {rows_, cols_}, {0}, {1}},
        {"agent_position", DType::kInt32, {2}, low, high},
        {"target_position", DType::kInt32, {2}, low, high},
    };
    return spec;
  }

  void Reset(State& s) const {
    std::memset(s.walls, 0, sizeof(s.walls));
    Divide(s);
    const int free_cells = CountFree(s);
    const int agent = static_cast<int>(s.rng.Below(static_cast<uint32_t>(free_cells)));
    int target = static_cast<int>(s.rng.Below(static_cast<uint32_t>(free_cells - 1)));
    target += target >= agent;  // uniform over the free cells other than the agent's
    const int agent_cell = NthFree(s, agent);
    const int target_cell = NthFree(s, target);
    s.agent_row = static_cast<uint8_t>(agent_cell / cols_);
    s.agent_col = static_cast<uint8_t>(agent_cell % cols_);
    s.target_row = static_cast<uint8_t>(target_cell / cols_);
    s.target_col = static_cast<uint8_t>(target_cell % cols_);
    s.step_count = 0;
    s.action_mask = Mask(s);
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const bool* walls = row.Get<bool>(0);
    const int32_t* agent = row.Get<int32_t>(1);
    const int32_t* target = row.Get<int32_t>(2);
    CheckPosition("agent_position", agent);
    CheckPosition("target_position", target);
    if (agent[0] == target[0] && agent[1] == target[1]) {
      throw ValueError("agent_position and target_position are the same cell (" +
                       std::to_string(agent[0]) + ", " + std::to_string(agent[1]) + ")");
    }
    if (walls[agent[0] * cols_ + agent[1]]) throw ValueError("agent_position is on a wall");
    if (walls[target[0] * cols_ + target[1]]) throw ValueError("target_position is on a wall");
    std::memset(s.walls, 0, sizeof(s.walls));
    for (int i = 0; i < rows_ * cols_; ++i) {
      s.walls[i >> 6] |= static_cast<uint64_t>(walls[i] ? 1 : 0) << (i & 63);
    }
    s.agent_row = static_cast<uint8_t>(agent[0]);
    s.agent_col = static_cast<uint8_t>(agent[1]);
    s.target_row = static_cast<uint8_t>(target[0]);
    s.target_col = static_cast<uint8_t>(target[1]);
    s.step_count = 0;
    s.action_mask = Mask(s);
  }

  StepResult Step(State& s, int32_t action) const {
    const bool legal = (s.action_mask >> action) & 1;
    if (legal) {
      s.agent_row = static_cast<uint8_t>(s.agent_row + kMoves[action][0]);
      s.agent_col = static_cast<uint8_t>(s.agent_col + kMoves[action][1]);
      s.action_mask = Mask(s);
    }
    s.step_count += 1;
    const bool reached = s.agent_row == s.target_row && s.agent_col == s.target_col;
    StepResult r;
    r.reward = reached ? 1.0f : 0.0f;
    r.terminated = reached || s.action_mask == 0 || (!legal && terminate_on_invalid_);
    r.truncated = s.step_count >= time_limit_;
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    // Walls: eight cells per table lookup, one 8-byte store each. The wall
    // words read as bytes in cell order (little-endian). A ragged end is
    // covered by one more store of the last eight cells, overlapping the
    // previous one with the same values.
    const auto* bits = reinterpret_cast<const uint8_t*>(s.walls);
    uint8_t* walls = row.Get<uint8_t>(0);
    const int cells = rows_ * cols_;
    const int whole = cells >> 3;
    for (int k = 0; k < whole; ++k) std::memcpy(walls + 8 * k, &kBitsToBools.v[bits[k]], 8);
    if (cells & 7) {
      if (cells >= 8) {
        std::memcpy(walls + cells - 8, &kBitsToBools.v[EightWalls(s, cells - 8)], 8);
      } else {
        for (int cell = 0; cell < cells; ++cell) walls[cell] = IsWall(s, cell);
      }
    }
    int32_t* agent = row.Get<int32_t>(1);
    agent[0] = s.agent_row;
    agent[1] = s.agent_col;
    int32_t* target = row.Get<int32_t>(2);
    target[0] = s.target_row;
    target[1] = s.target_col;
    *row.Get<int32_t>(3) = s.step_count;
    const uint32_t mask = static_cast<uint32_t>(kBitsToBools.v[s.action_mask]);
    std::memcpy(row.Get<uint8_t>(4), &mask, 4);
  }

  // Imported states (EnvPool.import_states) are checked with this before use:
  // Step indexes the wall grid with the positions.
  std::string CheckState(const State& s) const {
    if (s.agent_row >= rows_ || s.agent_col >= cols_) return "agent position outside the maze";
    if (s.target_row >= rows_ || s.target_col >= cols_) return "target position outside the maze";
    if (s.step_count < 0) return "negative step count";
    if (s.action_mask > 15) return "action mask has bits beyond the four actions";
    return "";
  }

  std::string Render(const State& s) const {
    // One character per cell: '#' wall, '.' free, 'A' agent, 'T' target.
    std::string out;
    for (int r = 0; r < rows_; ++r) {
      for (int c = 0; c < cols_; ++c) {
        char ch = IsWall(s, r * cols_ + c) ? '#' : '.';
        if (r == s.target_row && c == s.target_col) ch = 'T';
        if (r == s.agent_row && c == s.agent_col) ch = 'A';
        out += ch;
      }
      out += '\n';
    }
    out += "step " + std::to_string(s.step_count) + "/" + std::to_string(time_limit_) +
           "  agent (" + std::to_string(s.agent_row) + ", " + std::to_string(s.agent_col) +
           ")  target (" + std::to_string(s.target_row) + ", " + std::to_string(s.target_col) +
           ")";
    return out;
  }

  // Square cells of 32 pixels up to 10 cells a side (a 10 x 10 maze is 320 x
  // 320); larger mazes stay within 320 pixels a side (32 x 32: 10 a cell).
  FrameSize Frame() const { return {rows_ * Cell(), cols_ * Cell()}; }

  // Jumanji's maze viewer's colours: free cells white, walls black, the
  // target red; the agent a green disc (on the red cell when it is reached).
  void Draw(const State& s, Canvas& canvas) const {
    const int cell = Cell();
    canvas.Fill({255, 255, 255});
    for (int r = 0; r < rows_; ++r) {
      for (int c = 0; c < cols_; ++c) {
        if (IsWall(s, r * cols_ + c)) {
          canvas.FillRect(c * cell, r * cell, (c + 1) * cell, (r + 1) * cell, {0, 0, 0});
        }
      }
    }
    canvas.FillRect(s.target_col * cell, s.target_row * cell, (s.target_col + 1) * cell,
                    (s.target_row + 1) * cell, {255, 0, 0});
    canvas.FillCircle((s.agent_col + 0.5) * cell, (s.agent_row + 0.5) * cell, 0.4 * cell,
                      {0, 200, 0});
  }

 private:
  static constexpr int kMoves[4][2] = {{-1, 0}, {0, 1}, {1, 0}, {0, -1}};

  static bool IsWall(const State& s, int cell) { return (s.walls[cell >> 6] >> (cell & 63)) & 1; }
  // The wall bits of cells first .. first + 7 (first + 8 <= kMaxCells).
  static uint32_t EightWalls(const State& s, int first) {
    const int word = first >> 6, shift = first & 63;
    uint64_t x = s.walls[word] >> shift;
    if (shift > 56) x |= s.walls[word + 1] << (64 - shift);
    return static_cast<uint32_t>(x & 0xFF);
  }
  static void SetWall(State& s, int cell, bool wall) {
    const uint64_t bit = uint64_t{1} << (cell & 63);
    s.walls[cell >> 6] = wall ? (s.walls[cell >> 6] | bit) : (s.walls[cell >> 6] & ~bit);
  }
  // Jumanji's _compute_action_mask: a move is legal when its cell is inside
  // the grid and not a wall. Branch-free: an off-grid move tests the agent's
  // own cell instead (always free) and is then masked out by `inside`.
  uint8_t Mask(const State& s) const {
    const int r = s.agent_row, c = s.agent_col, cell = r * cols_ + c;
    const bool inside[4] = {r > 0, c + 1 < cols_, r + 1 < rows_, c > 0};
    const int step[4] = {-cols_, 1, cols_, -1};
    uint32_t mask = 0;
    for (int a = 0; a < 4; ++a) {
      const int target = inside[a] ? cell + step[a] : cell;
      mask |= static_cast<uint32_t>(inside[a] & !IsWall(s, target)) << a;
    }
    return static_cast<uint8_t>(mask);
  }

  void CheckPosition(const char* name, const int32_t* p) const {
    if (p[0] < 0 || p[0] >= rows_ || p[1] < 0 || p[1] >= cols_) {
      throw ValueError(std::string(name) + " (" + std::to_string(p[0]) + ", " +
                       std::to_string(p[1]) + ") is outside the " + std::to_string(rows_) + " x " +
                       std::to_string(cols_) + " grid");
    }
  }

  // Recursive division with an explicit LIFO stack of chambers, as Jumanji's
  // generate_maze. Random odd offset in [0, n): 2 * U{0 .. n/2 - 1} + 1;
  // random even offset in [0, n): 2 * U{0 .. (n+1)/2 - 1}.
  void Divide(State& s) const {
    struct Chamber {
      uint8_t x, y, w, h;
    };
    // Chambers on the stack are disjoint and at least 2 x 2.
    Chamber stack[kMaxCells / 4 + 1];
    int size = 0;
    stack[size++] = {0, 0, static_cast<uint8_t>(cols_), static_cast<uint8_t>(rows_)};
    auto push = [&](int x, int y, int w, int h) {
      if (w > 1 && h > 1) {
        stack[size++] = {static_cast<uint8_t>(x), static_cast<uint8_t>(y), static_cast<uint8_t>(w),
                         static_cast<uint8_t>(h)};
      }
    };
    while (size > 0) {
      const Chamber ch = stack[--size];
      const int x = ch.x, y = ch.y, w = ch.w, h = ch.h;
      if (w >= h) {  // Jumanji's split_horizontally: a vertical wall
        const int dx = 2 * static_cast<int>(s.rng.Below(static_cast<uint32_t>(w / 2))) + 1;
        for (int r = y; r < y + h; ++r) SetWall(s, r * cols_ + x + dx, true);
        push(x, y, dx, h);
        push(x + dx + 1, y, w - dx - 1, h);
        const int py = 2 * static_cast<int>(s.rng.Below(static_cast<uint32_t>((h + 1) / 2)));
        SetWall(s, (y + py) * cols_ + x + dx, false);
      } else {  // split_vertically: a horizontal wall
        const int dy = 2 * static_cast<int>(s.rng.Below(static_cast<uint32_t>(h / 2))) + 1;
        for (int c = x; c < x + w; ++c) SetWall(s, (y + dy) * cols_ + c, true);
        push(x, y, w, dy);
        push(x, y + dy + 1, w, h - dy - 1);
        const int px = 2 * static_cast<int>(s.rng.Below(static_cast<uint32_t>((w + 1) / 2)));
        SetWall(s, (y + dy) * cols_ + x + px, false);
      }
    }
  }

  int CountFree(const State& s) const {
    const int cells = rows_ * cols_;
    int walls = 0;
    for (int w = 0; w < (cells + 63) / 64; ++w) walls += __builtin_popcountll(s.walls[w]);
    return cells - walls;  // bits past `cells` are never set
  }

  // The cell index of the n-th free cell (0-based, row-major), a word at a
  // time: skip whole words by popcount, then drop the n lowest free bits.
  int NthFree(const State& s, int n) const {
    const int cells = rows_ * cols_;
    for (int w = 0; w * 64 < cells; ++w) {
      uint64_t free = ~s.walls[w];
      if (cells - w * 64 < 64) free &= (uint64_t{1} << (cells - w * 64)) - 1;
      const int count = __builtin_popcountll(free);
      if (n < count) {
        for (; n > 0; --n) free &= free - 1;
        return w * 64 + __builtin_ctzll(free);
      }
      n -= count;
    }
    return -1;  // unreachable: n < CountFree(s)
  }

  int Cell() const { return std::max(10, std::min(32, 320 / std::max(rows_, cols_))); }

  int rows_;
  int cols_;
  int32_t time_limit_;
  bool terminate_on_invalid_;
};

}  // namespace pyenvpool
