// ConnectFour-v0: two-player Connect Four on a 6 x 7 board, 4 in a row wins
// (horizontal, vertical or either diagonal); the rules of burn-ppo's
// src/envs/connect_four.rs, with a player-relative observation.
//
// One env step is one move, by whichever player is to move; players alternate
// and the first player moves first in every episode. The engine is a pure
// game: who plays each side (one network in self-play, a fixed opponent in an
// evaluation) is the caller's business.
//
// Conventions (tests/tasks/test_connect_four.py checks each one):
// - Action c in 0..6 drops a piece into column c (0 = leftmost).
// - Reward is the mover's: +1 when the move connects four (the game is won),
//   0 for every other legal move, a draw included. The opponent's reward for
//   the same step is the negation (the game is zero-sum), so a self-play
//   learner uses negamax returns (trainer.ppo.compute_negamax_gae).
// - terminated: four connected, the board full (a draw, reward 0), or an
//   illegal move. truncated is never set (a game lasts at most 42 moves).
// - An illegal move (a full column) ends the game as a forfeit: reward -1 for
//   the mover, board unchanged. As in BinPack-v0 an invalid action ends the
//   episode and changes nothing; the reward is a loss rather than BinPack's 0
//   because 0 is a draw here, and a losing player must not be able to escape
//   to a draw with an illegal move. Masked policies never see it.
// - Every step, legal or not, passes the turn, and the observation is always
//   seen by the player to move next (after the last move of a game: the one
//   who would have moved next).
//
// Observation (player-relative, so one network can play both sides):
// - board bool [2, 6, 7]: plane 0 the pieces of the player to move, plane 1
//   the opponent's; row 0 is the top row, column 0 the left column;
// - to_play int32 []: 0 when the first player is to move, 1 the second;
// - action_mask bool [7]: the column is not full and the game is not over
//   (all false in the final observation of a game).
// Task kwarg random_opening_moves = M (default 0): each game starts after a
// number of uniformly random legal moves drawn uniformly from 0..M, a move
// that would end the game excepted (the opening stops before it). Self-play
// training uses it to see varied positions; the plain game is M = 0.
// Task kwarg random_move_probability = p (default 0): each move is, with
// probability p, replaced by a uniformly random legal column (an illegal
// action that is replaced is not a forfeit). The noise makes a won position
// harder to convert, so that defending pays off in self-play, and spreads the
// positions a game visits, as sticky actions do in the ALE.
// reset(instances={"board": int32 [k, 6, 7]}) loads positions: 0 empty,
// 1 the first player's pieces, 2 the second player's, same rows and columns.
// The player to move follows from the counts (equal: the first player).
//
// State (a snapshot is a plain copy, 32 + 24 bytes): one bitboard per player,
// bit c * 7 + h for the piece h cells above the bottom of column c. Bit 6 of
// each column is an always-empty sentinel, so shifting a bitboard by 1
// (vertical), 7 (horizontal), 6 and 8 (the diagonals) never wraps a line from
// one column into the next. Only the random opening and moves draw from the Rng.
#pragma once

#include <cstdint>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class ConnectFour {
 public:
  static constexpr const char* kId = "ConnectFour-v0";
  static constexpr int64_t kMinChunk = 1024;  // a step with its obs costs ~30 ns
  static constexpr int kRows = 6;
  static constexpr int kCols = 7;
  static constexpr int kCells = kRows * kCols;

  enum Outcome : uint8_t { kOngoing = 0, kConnected = 1, kDraw = 2, kForfeit = 3 };

  struct State {
    uint64_t pieces[2];     // pieces[p]: the bitboard of player p (0 moves first)
    uint8_t heights[kCols];  // pieces in each column
    uint8_t ply;             // pieces on the board
    uint8_t to_play;         // the player to move next (ply & 1 unless the game was forfeited)
    uint8_t outcome;         // Outcome of the last move
    Rng rng;                 // draws the random opening and random moves
  };

  explicit ConnectFour(Kwargs& kwargs) {
    opening_moves_ = static_cast<int>(kwargs.Int("random_opening_moves", 0, 0, kCells - 1));
    random_move_probability_ = kwargs.Float("random_move_probability", 0.0, 0.0, 1.0);
    kwargs.CheckAllUsed(kId);
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(kCols);
    spec.obs_fields = {
        {"board", DType::kBool, {2, kRows, kCols}, {0}, {1}},
        {"to_play", DType::kInt32, {}, {0}, {1}},
        {"action_mask", DType::kBool, {kCols}, {0}, {1}},
    };
    spec.instance_fields = {{"board", DType::kInt32, {kRows, kCols}, {0}, {2}}};
    return spec;
  }

  void Reset(State& s) const {
    s.pieces[0] = s.pieces[1] = 0;
    for (auto& h : s.heights) h = 0;
    s.ply = 0;
    s.to_play = 0;
    s.outcome = kOngoing;
    if (opening_moves_ == 0) return;
    const int moves = static_cast<int>(s.rng.Below(static_cast<uint32_t>(opening_moves_ + 1)));
    for (int i = 0; i < moves; ++i) {
      State next = s;
      if (Move(next, RandomLegal(next)).terminated) break;
      s = next;
    }
  }

  void LoadInstance(State& s, const InstanceRow& row) const {
    const int32_t* board = row.Get<int32_t>(0);
    uint64_t pieces[2] = {0, 0};
    uint8_t heights[kCols];
    int count[2] = {0, 0};
    for (int c = 0; c < kCols; ++c) {
      int h = 0;
      for (int r = kRows - 1; r >= 0; --r) {  // bottom up
        const int32_t v = board[r * kCols + c];
        if (v < 0 || v > 2) {
          throw ValueError("board cell (" + std::to_string(r) + ", " + std::to_string(c) +
                           ") is " + std::to_string(v) +
                           "; cells must be 0 (empty), 1 (first player) or 2 (second player)");
        }
        if (v == 0) continue;
        if (h != kRows - 1 - r) {
          throw ValueError("board cell (" + std::to_string(r) + ", " + std::to_string(c) +
                           ") holds a piece above an empty cell");
        }
        pieces[v - 1] |= Bit(c, h);
        ++count[v - 1];
        ++h;
      }
      heights[c] = static_cast<uint8_t>(h);
    }
    if (count[0] != count[1] && count[0] != count[1] + 1) {
      throw ValueError("board has " + std::to_string(count[0]) + " first-player and " +
                       std::to_string(count[1]) +
                       " second-player pieces; the first player moves first, so the counts "
                       "must be equal or one more for the first player");
    }
    if (Connected(pieces[0]) || Connected(pieces[1])) {
      throw ValueError("board already has four in a row (a finished game)");
    }
    if (count[0] + count[1] == kCells) throw ValueError("board is full (a finished game)");
    s.pieces[0] = pieces[0];
    s.pieces[1] = pieces[1];
    for (int c = 0; c < kCols; ++c) s.heights[c] = heights[c];
    s.ply = static_cast<uint8_t>(count[0] + count[1]);
    s.to_play = static_cast<uint8_t>(s.ply & 1);
    s.outcome = kOngoing;
  }

  StepResult Step(State& s, int32_t action) const {
    if (random_move_probability_ > 0 && s.rng.Uniform() < random_move_probability_) {
      action = RandomLegal(s);
    }
    return Move(s, action);
  }

  // One move in column `action`, as documented above.
  StepResult Move(State& s, int32_t action) const {
    const int me = s.to_play;
    s.to_play ^= 1;
    StepResult r;
    r.terminated = true;
    if (s.heights[action] >= kRows) {  // a full column: forfeit
      s.outcome = kForfeit;
      r.reward = -1.0f;
      return r;
    }
    s.pieces[me] |= Bit(action, s.heights[action]);
    s.heights[action] += 1;
    s.ply += 1;
    if (Connected(s.pieces[me])) {
      s.outcome = kConnected;
      r.reward = 1.0f;
    } else if (s.ply == kCells) {
      s.outcome = kDraw;
    } else {
      r.terminated = false;
    }
    return r;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    uint8_t* board = row.Get<uint8_t>(0);
    const uint64_t planes[2] = {s.pieces[s.to_play & 1], s.pieces[(s.to_play & 1) ^ 1]};
    for (int p = 0; p < 2; ++p) {
      for (int r = 0; r < kRows; ++r) {
        for (int c = 0; c < kCols; ++c) {
          board[(p * kRows + r) * kCols + c] = (planes[p] >> (c * 7 + kRows - 1 - r)) & 1;
        }
      }
    }
    *row.Get<int32_t>(1) = s.to_play;
    uint8_t* mask = row.Get<uint8_t>(2);
    const bool open = s.outcome == kOngoing;
    for (int c = 0; c < kCols; ++c) mask[c] = open && s.heights[c] < kRows;
  }

  // Imported states (EnvPool.import_states) are checked with this before use:
  // Step indexes a column by its height.
  std::string CheckState(const State& s) const {
    if (s.pieces[0] & s.pieces[1]) return "a cell holds pieces of both players";
    int ply = 0;
    for (int c = 0; c < kCols; ++c) {
      if (s.heights[c] > kRows) return "a column is higher than the board";
      const uint64_t column = (s.pieces[0] | s.pieces[1]) >> (c * 7) & 0x7F;
      if (column != (uint64_t{1} << s.heights[c]) - 1) {
        return "column " + std::to_string(c) + " does not match its height";
      }
      ply += s.heights[c];
    }
    if ((s.pieces[0] | s.pieces[1]) & ~kBoardBits) return "pieces outside the board";
    if (ply != s.ply) return "ply does not match the pieces on the board";
    if (s.to_play > 1) return "to_play must be 0 or 1";
    if (s.outcome > kForfeit) return "unknown outcome";
    return "";
  }

  std::string Render(const State& s) const {
    // 'X' the first player, 'O' the second, '.' empty; column numbers below.
    std::string out;
    for (int r = 0; r < kRows; ++r) {
      for (int c = 0; c < kCols; ++c) {
        const uint64_t bit = Bit(c, kRows - 1 - r);
        out += (s.pieces[0] & bit) ? 'X' : (s.pieces[1] & bit) ? 'O' : '.';
        out += c + 1 < kCols ? " " : "\n";
      }
    }
    out += "0 1 2 3 4 5 6\nply " + std::to_string(s.ply) + ", ";
    const char next = s.to_play == 0 ? 'X' : 'O';
    const char last = s.to_play == 0 ? 'O' : 'X';
    switch (s.outcome) {
      case kConnected:
        out += std::string(1, last) + " connected four";
        break;
      case kDraw:
        out += "draw";
        break;
      case kForfeit:
        out += std::string(1, last) + " forfeited (illegal move)";
        break;
      default:
        out += std::string(1, next) + " to move";
    }
    return out;
  }

  FrameSize Frame() const { return {kStrip + kRows * kCell, kCols * kCell}; }

  // A blue board with white holes, the first player's discs red and the
  // second's yellow, row 0 at the top. Above it a strip: during a game, the
  // mover's disc over every column that is not full; once the game is over,
  // the winner's colour (grey for a draw), and a white ring in each disc of
  // the connected four.
  void Draw(const State& s, Canvas& canvas) const {
    constexpr Color kDisc[2] = {{220, 40, 40}, {245, 200, 30}};
    constexpr Color kWhite = {255, 255, 255};
    const int width = kCols * kCell;
    canvas.Fill({235, 235, 235});
    canvas.FillRect(0, kStrip, width, kStrip + kRows * kCell, {0, 84, 180});
    const uint64_t connected =
        s.outcome == kConnected ? Fours(s.pieces[0]) | Fours(s.pieces[1]) : 0;
    for (int r = 0; r < kRows; ++r) {
      for (int c = 0; c < kCols; ++c) {
        const uint64_t bit = Bit(c, kRows - 1 - r);
        const Color color = (s.pieces[0] & bit)   ? kDisc[0]
                            : (s.pieces[1] & bit) ? kDisc[1]
                                                  : kWhite;
        const double x = (c + 0.5) * kCell, y = kStrip + (r + 0.5) * kCell;
        canvas.FillCircle(x, y, 0.4 * kCell, color);
        if (connected & bit) canvas.StrokeCircle(x, y, 0.25 * kCell, 0.08 * kCell, kWhite);
      }
    }
    if (s.outcome == kOngoing) {
      for (int c = 0; c < kCols; ++c) {
        if (s.heights[c] < kRows) {
          canvas.FillCircle((c + 0.5) * kCell, kStrip / 2.0, 0.3 * kCell, kDisc[s.to_play & 1]);
        }
      }
    } else if (s.outcome == kDraw) {
      canvas.FillRect(0, 0, width, kStrip, {150, 150, 150});
    } else {
      // Connected: the last mover won; forfeit: the mover lost. The turn has passed either way.
      const int winner = s.outcome == kConnected ? (s.to_play ^ 1) & 1 : s.to_play & 1;
      canvas.FillRect(0, 0, width, kStrip, kDisc[winner]);
    }
  }

 private:
  static constexpr int kCell = 64;   // pixels a board cell
  static constexpr int kStrip = 48;  // pixels of the strip above the board

  static constexpr uint64_t Bit(int col, int height) {
    return uint64_t{1} << (col * 7 + height);
  }
  // The 42 cells: the low 6 bits of each of the 7 columns.
  static constexpr uint64_t kBoardBits = uint64_t{0x3F} * 0x0040810204081ULL;

  // A uniformly random column that is not full (the board is not full).
  static int RandomLegal(State& s) {
    int legal[kCols];
    int count = 0;
    for (int c = 0; c < kCols; ++c) {
      if (s.heights[c] < kRows) legal[count++] = c;
    }
    return legal[s.rng.Below(static_cast<uint32_t>(count))];
  }

  // The cells of every four in a row on one player's bitboard.
  static uint64_t Fours(uint64_t b) {
    uint64_t cells = 0;
    for (int shift : {1, 7, 6, 8}) {
      const uint64_t starts = b & (b >> shift) & (b >> 2 * shift) & (b >> 3 * shift);
      cells |= starts | starts << shift | starts << 2 * shift | starts << 3 * shift;
    }
    return cells;
  }

  // Four in a row anywhere on one player's bitboard.
  static bool Connected(uint64_t b) {
    for (int shift : {1, 7, 6, 8}) {
      const uint64_t pairs = b & (b >> shift);
      if (pairs & (pairs >> (2 * shift))) return true;
    }
    return false;
  }

  int opening_moves_;
  double random_move_probability_;
};

}  // namespace pyenvpool
