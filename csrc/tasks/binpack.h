// BinPack-v0: a faithful, integer-exact port of Jumanji 1.1.2 `BinPack-v2`
// (jumanji/environments/packing/bin_pack/{env,generator,space,reward}.py),
// with its defaults: RandomGenerator(max_num_items=20, max_num_ems=40,
// split_num_same_items=2), obs_num_ems=40, DenseReward, normalised
// observation. Given the same instance and actions, every observation field,
// reward and done flag equals Jumanji's bit for bit (tests/tasks/test_binpack.py).
//
// The problem: place boxes ("items", sizes in mm) into one container. Free
// space is tracked as Empty Maximal Spaces (EMSs): axis-aligned boxes that
// touch no placed item. Action a = e * max_num_items + i puts item i with its
// lower corner at the lower corner of the e-th largest EMS (row-major over
// Jumanji's (obs_num_ems, max_num_items) action mask). The reward is the item's
// volume over the container's; a masked (invalid) action ends the episode with
// reward 0 and changes nothing; otherwise the episode ends when no valid action
// is left. There is no time limit, so `truncated` is never set.
//
// Coordinates are integer millimetres. Jumanji computes new EMSs in float32
// against +-inf half-spaces, but every value it produces is an integer of at
// most the container size, so int32 arithmetic reproduces it exactly and the
// infinities never survive an intersection with a finite EMS. The state keeps
// coordinates as int16 to stay small (a snapshot is a copy of it); that caps
// container sides at 32767 mm.
//
// Reset draws a new instance from a port of Jumanji's RandomGenerator. JAX's
// threefry stream cannot be reproduced, so the instances match in
// distribution, not draw for draw; reset(instances=...) loads given ones.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/task.h"

namespace pyenvpool {

class BinPack {
 public:
  static constexpr const char* kId = "BinPack-v0";
  static constexpr int64_t kMinChunk = 16;  // a step costs 1-3 microseconds
  // Compile-time capacities. They cover Jumanji's 10-, 20- and 30-item
  // configurations (10/15/15, 20/40/40 and 30/60/50 items/EMSs/observed EMSs)
  // and make item sets and EMS sets fit one uint32 and one uint64.
  static constexpr int kMaxItems = 32;
  static constexpr int kMaxEms = 64;

  // Coordinate c of a box, in observation order: x1, x2, y1, y2, z1, z2.
  // Axis a runs from c[2a] (low) to c[2a + 1] (high).
  struct Box {
    int32_t c[6];
  };

  struct State {
    Rng rng;
    // EMS slots in slot order (Jumanji's state.ems), one row per coordinate.
    // Freed slots keep their stale coordinates: the observation shows them.
    int16_t ems[6][kMaxEms];
    int16_t item_size[3][kMaxItems];      // x, y, z lengths; constant in an episode
    int16_t item_location[3][kMaxItems];  // lower corner of each placed item
    // Kept up to date after every change, so that Step and WriteObs need no
    // search. fits[s] (live slots only): bit i set when item i is real, not
    // yet placed and fits EMS s. Jumanji's action mask row e is
    // fits[sorted_ems[e]] for e < num_live and empty after.
    uint32_t fits[kMaxEms];
    uint8_t sorted_ems[kMaxEms];  // observed index -> slot, by volume, descending
    uint8_t num_live;             // live slots; they come first in sorted_ems
    uint64_t ems_mask;            // bit s: slot s holds a live EMS
    uint32_t items_mask;          // bit i: item i is real (not padding)
    uint32_t items_placed;        // bit i: item i is in the container
  };

  explicit BinPack(Kwargs& kwargs) {
    num_items_ = static_cast<int>(kwargs.Int("max_num_items", 20, 1, kMaxItems));
    num_ems_ = static_cast<int>(kwargs.Int("max_num_ems", 40, 1, kMaxEms));
    obs_num_ems_ = static_cast<int>(kwargs.Int("obs_num_ems", num_ems_, 1, num_ems_));
    split_num_same_items_ =
        static_cast<int>(kwargs.Int("split_num_same_items", 2, 1, num_items_));
    const double split_eps = kwargs.Float("split_eps", 0.3, 0.0, 0.5);
    prob_split_one_item_ = kwargs.Float("prob_split_one_item", 0.7, 0.0, 1.0);
    container_[0] = static_cast<int32_t>(kwargs.Int("container_x", 5870, 1, kTop));
    container_[1] = static_cast<int32_t>(kwargs.Int("container_y", 2330, 1, kTop));
    container_[2] = static_cast<int32_t>(kwargs.Int("container_z", 2200, 1, kTop));
    kwargs.CheckAllUsed(kId);
    // Settings under which the generator (Jumanji's too) would loop forever.
    if (split_eps >= 0.5) {
      throw ValueError("task kwarg 'split_eps' must be in [0, 0.5), got " +
                       std::to_string(split_eps));
    }
    if (prob_split_one_item_ == 0.0 && split_num_same_items_ == 1) {
      throw ValueError(
          "task kwargs 'prob_split_one_item'=0 and 'split_num_same_items'=1 leave the "
          "generator no way to split the container");
    }
    const int64_t cells = static_cast<int64_t>(container_[0]) * container_[1] * container_[2];
    if (cells < num_items_ - split_num_same_items_ + 1) {
      throw ValueError("task kwargs 'container_x/y/z' give a container of " +
                       std::to_string(cells) + " mm^3, too small to cut into " +
                       std::to_string(num_items_ - split_num_same_items_ + 1) + " items");
    }
    split_eps_ = static_cast<float>(split_eps);
    for (int a = 0; a < 3; ++a) {
      // Jumanji normalises `v / C` on int32 arrays; XLA evaluates that as a
      // multiplication by the float32 reciprocal, which differs from a true
      // division by one ulp on about 18% of values. We do the same.
      inverse_container_[a] = 1.0f / static_cast<float>(container_[a]);
    }
    container_volume_ = Volume(container_[0], container_[1], container_[2]);
    slots_mask_ = num_ems_ == 64 ? ~0ULL : (1ULL << num_ems_) - 1;
    items_bits_ = num_items_ == 32 ? ~0u : (1u << num_items_) - 1;
  }

  TaskSpec Spec() const {
    TaskSpec spec;
    spec.action = ActionSpec::Discrete(obs_num_ems_ * num_items_);
    spec.obs_fields = {
        {"ems", DType::kFloat32, {obs_num_ems_, 6}, {0.0}, {1.0}},
        {"ems_mask", DType::kBool, {obs_num_ems_}},
        {"items", DType::kFloat32, {num_items_, 3}, {0.0}, {1.0}},
        {"items_mask", DType::kBool, {num_items_}},
        {"items_placed", DType::kBool, {num_items_}},
        {"action_mask", DType::kBool, {obs_num_ems_ * num_items_}},
    };
    spec.instance_fields = {
        {"items", DType::kInt32, {num_items_, 3}},
        {"items_mask", DType::kBool, {num_items_}},
    };
    return spec;
  }

  // Jumanji's RandomGenerator: cut the container recursively into boxes until
  // there are max_num_items - split_num_same_items + 1 of them (19 for v2).
  void Reset(State& s) const {
    Box box[kMaxItems];
    for (int i = 0; i < kMaxItems; ++i) box[i] = Container();  // every slot starts as the container
    uint32_t mask = 1;
    const int target = num_items_ - split_num_same_items_ + 1;
    while (__builtin_popcount(mask) < target) {
      const int axis = static_cast<int>(s.rng.Below(3));
      const int lo = 2 * axis, hi = lo + 1;
      // The box to cut is drawn with probability proportional to its length
      // on the axis (jax.random.choice with p = lengths of the real boxes).
      int32_t total = 0;
      for (int i = 0; i < num_items_; ++i) {
        if (mask >> i & 1u) total += box[i].c[hi] - box[i].c[lo];
      }
      int32_t r = static_cast<int32_t>(s.rng.Below(static_cast<uint32_t>(total)));
      int id = 0;
      for (; id < num_items_; ++id) {
        if (!(mask >> id & 1u)) continue;
        r -= box[id].c[hi] - box[id].c[lo];
        if (r < 0) break;
      }
      const int32_t start = box[id].c[lo], end = box[id].c[hi], length = end - start;
      if (s.rng.Uniform() < prob_split_one_item_) {
        // One cut, uniform in [start + pad, end - pad); pad is computed in
        // float32 and truncated, as `jnp.array(split_eps * axis_len, int32)`.
        const int32_t pad = static_cast<int32_t>(split_eps_ * static_cast<float>(length));
        const int32_t cut_low = start + pad, cut_high = end - pad;
        // jax.random.randint returns minval when the range is empty.
        const int32_t cut = cut_high > cut_low ? s.rng.Range(cut_low, cut_high) : cut_low;
        const int free = FirstFree(mask);
        box[free] = box[id];
        box[id].c[hi] = cut;
        box[free].c[lo] = cut;
        mask |= 1u << free;
      } else {
        // Equal pieces: n ~ U{1..split_num_same_items}; piece k spans
        // [start + int(k*L/n), start + int((k+1)*L/n)) with float32 division.
        const int n = s.rng.Range(1, split_num_same_items_ + 1);
        box[id].c[hi] = start + static_cast<int32_t>(static_cast<float>(length) / n);
        for (int k = 1; k < n; ++k) {
          const int free = FirstFree(mask);
          box[free] = box[id];
          box[free].c[lo] = start + static_cast<int32_t>(static_cast<float>(k * length) / n);
          box[free].c[hi] = start + static_cast<int32_t>(static_cast<float>((k + 1) * length) / n);
          mask |= 1u << free;
        }
      }
      // Drop boxes cut down to zero thickness. Their slot keeps the empty
      // box's sizes (as do never-used slots the container's): padding items
      // are observed with those sizes, as in Jumanji.
      for (int i = 0; i < num_items_; ++i) {
        if (IsEmpty(box[i])) mask &= ~(1u << i);
      }
    }
    std::memset(s.item_size, 0, sizeof(s.item_size));
    for (int i = 0; i < num_items_; ++i) {
      for (int a = 0; a < 3; ++a) {
        s.item_size[a][i] = static_cast<int16_t>(box[i].c[2 * a + 1] - box[i].c[2 * a]);
      }
    }
    s.items_mask = mask;
    StartEpisode(s);
  }

  // reset(instances={"items": int32 [k, max_num_items, 3] (mm),
  //                  "items_mask": bool [k, max_num_items]}).
  // Padding rows (items_mask False) may hold any size from 0 up to the
  // container's, as Jumanji's generator leaves them; real items must fit.
  void LoadInstance(State& s, const InstanceRow& row) const {
    const int32_t* sizes = row.Get<int32_t>(0);
    const uint8_t* real = row.Get<uint8_t>(1);
    uint32_t mask = 0;
    for (int i = 0; i < num_items_; ++i) {
      if (real[i]) mask |= 1u << i;
      for (int a = 0; a < 3; ++a) {
        const int32_t v = sizes[3 * i + a];
        const bool too_big = v > container_[a], too_small = real[i] ? v <= 0 : v < 0;
        if (!too_big && !too_small) continue;
        std::string what = "items[" + std::to_string(i) + "] " + "xyz"[a] + " length " +
                           std::to_string(v) + " mm";
        if (too_big) {
          throw ValueError(what + " is larger than the container (" +
                           std::to_string(container_[a]) + " mm)" +
                           (real[i] ? ": the item can never fit" : ""));
        }
        throw ValueError(what + (real[i] ? " is not positive on a real item" : " is negative"));
      }
    }
    if (mask == 0) throw ValueError("items_mask is all False: the instance has no items");
    std::memset(s.item_size, 0, sizeof(s.item_size));
    for (int i = 0; i < num_items_; ++i) {
      for (int a = 0; a < 3; ++a) s.item_size[a][i] = static_cast<int16_t>(sizes[3 * i + a]);
    }
    s.items_mask = mask;
    StartEpisode(s);
  }

  StepResult Step(State& s, int32_t action) const {
    const int e = action / num_items_;
    const int item = action % num_items_;
    const int slot = s.sorted_ems[e];
    StepResult result;
    if (e >= s.num_live || !(s.fits[slot] >> item & 1u)) {
      // Invalid action: Jumanji's lax.cond keeps the state as it was, the
      // dense reward is 0 and the episode ends.
      result.terminated = true;
      return result;
    }
    // The item goes to the lower corner of the chosen EMS.
    Box placed;
    for (int a = 0; a < 3; ++a) {
      placed.c[2 * a] = s.ems[2 * a][slot];
      placed.c[2 * a + 1] = placed.c[2 * a] + s.item_size[a][item];
      s.item_location[a][item] = s.ems[2 * a][slot];
    }
    s.items_placed |= 1u << item;
    for (uint32_t& f : s.fits) f &= ~(1u << item);
    UpdateEms(s, placed);
    SortEms(s);
    result.reward = Volume(s.item_size[0][item], s.item_size[1][item], s.item_size[2][item]) /
                    container_volume_;
    result.terminated = !AnyValidAction(s);
    return result;
  }

  void WriteObs(const State& s, const ObsRow& row) const {
    float* ems = row.Get<float>(0);
    bool* ems_mask = row.Get<bool>(1);
    for (int e = 0; e < obs_num_ems_; ++e) {
      const int slot = s.sorted_ems[e];
      for (int c = 0; c < 6; ++c) {
        ems[6 * e + c] = static_cast<float>(s.ems[c][slot]) * inverse_container_[c / 2];
      }
      ems_mask[e] = e < s.num_live;
    }
    WriteActionMask(s, row.Get<bool>(5));
    float* items = row.Get<float>(2);
    bool* items_mask = row.Get<bool>(3);
    bool* items_placed = row.Get<bool>(4);
    for (int i = 0; i < num_items_; ++i) {
      for (int a = 0; a < 3; ++a) {
        items[3 * i + a] = static_cast<float>(s.item_size[a][i]) * inverse_container_[a];
      }
      items_mask[i] = s.items_mask >> i & 1u;
      items_placed[i] = s.items_placed >> i & 1u;
    }
  }

  // A text picture: totals, a top view of the container and the item list.
  // Imported states (EnvPool.import_states) are checked with this before use:
  // Step and WriteObs index the slot arrays through sorted_ems.
  std::string CheckState(const State& s) const {
    if (s.num_live > num_ems_) return "more live EMS slots than max_num_ems";
    if (num_ems_ < 64 && (s.ems_mask >> num_ems_) != 0) return "EMS mask beyond max_num_ems";
    if (__builtin_popcountll(s.ems_mask) != s.num_live) return "EMS count disagrees with its mask";
    for (int e = 0; e < num_ems_; ++e) {
      if (s.sorted_ems[e] >= num_ems_) return "EMS order names a slot beyond max_num_ems";
    }
    const uint32_t items = num_items_ >= 32 ? ~0U : (1U << num_items_) - 1;
    if ((s.items_mask | s.items_placed) & ~items) return "item bits beyond max_num_items";
    for (int e = 0; e < num_ems_; ++e) {
      if (s.fits[e] & ~items) return "fit bits beyond max_num_items";
    }
    return "";
  }

  std::string Render(const State& s) const {
    double packed = 0.0;
    int num_placed = 0, num_real = 0, num_valid = 0;
    for (int i = 0; i < num_items_; ++i) {
      num_real += s.items_mask >> i & 1u;
      if (s.items_placed >> i & 1u) {
        ++num_placed;
        packed += static_cast<double>(s.item_size[0][i]) * s.item_size[1][i] * s.item_size[2][i];
      }
    }
    for (int e = 0; e < std::min<int>(s.num_live, obs_num_ems_); ++e) {
      num_valid += __builtin_popcount(s.fits[s.sorted_ems[e]]);
    }
    const double capacity = static_cast<double>(container_[0]) * container_[1] * container_[2];
    char line[256];
    std::string out;
    std::snprintf(line, sizeof(line),
                  "BinPack-v0: %d/%d items placed, utilisation %.1f%%, %d/%d EMS slots live, "
                  "%d valid actions\n",
                  num_placed, num_real, 100.0 * packed / capacity,
                  s.num_live, num_ems_, num_valid);
    out += line;
    // Top view: x to the right, y upwards; each cell shows the height of the
    // highest placed item over its centre in tenths of the container ('.' =
    // floor, '#' = full height).
    constexpr int kCols = 58, kRows = 12;
    std::snprintf(line, sizeof(line),
                  "container %d x %d x %d mm; top view, digit = top height in tenths\n",
                  container_[0], container_[1], container_[2]);
    out += line;
    const std::string border = "+" + std::string(kCols, '-') + "+\n";
    out += border;
    for (int r = kRows - 1; r >= 0; --r) {
      std::string text(kCols, '.');
      const double y = (r + 0.5) * container_[1] / kRows;
      for (int col = 0; col < kCols; ++col) {
        const double x = (col + 0.5) * container_[0] / kCols;
        int top = 0;
        for (int i = 0; i < num_items_; ++i) {
          if (!(s.items_placed >> i & 1u)) continue;
          const int x1 = s.item_location[0][i], y1 = s.item_location[1][i];
          if (x >= x1 && x < x1 + s.item_size[0][i] && y >= y1 && y < y1 + s.item_size[1][i]) {
            top = std::max(top, s.item_location[2][i] + s.item_size[2][i]);
          }
        }
        if (top > 0) {
          const int tenth = static_cast<int>(10.0 * top / container_[2]);
          text[col] = tenth >= 10 ? '#' : static_cast<char>('0' + tenth);
        }
      }
      out += "|" + text + "|\n";
    }
    out += border;
    for (int i = 0; i < num_items_; ++i) {
      if (!(s.items_mask >> i & 1u)) continue;
      const int n = std::snprintf(line, sizeof(line), "  item %2d  %4d x %4d x %4d mm", i,
                                  s.item_size[0][i], s.item_size[1][i], s.item_size[2][i]);
      if (s.items_placed >> i & 1u) {
        std::snprintf(line + n, sizeof(line) - n, "  at (%d, %d, %d)\n", s.item_location[0][i],
                      s.item_location[1][i], s.item_location[2][i]);
      } else {
        std::snprintf(line + n, sizeof(line) - n, "  not placed\n");
      }
      out += line;
    }
    return out;
  }

  FrameSize Frame() const { return {kFrameHeight, kFrameWidth}; }

  // An oblique view of the container, seen from the front (y = 0), the
  // right (x = container_x) and above: x to the right, z up, y receding up
  // and to the right. Drawn: the floor and the two far walls, every placed
  // item as a box with its three visible faces shaded in its own colour
  // (hue item / max_num_items around the colour wheel, as Jumanji's viewer
  // colours items by index), back to front, then the container's near edges
  // and "placed/real  utilisation%" in the top-left corner.
  void Draw(const State& s, Canvas& canvas) const {
    const View view = MakeView();
    canvas.Fill({255, 255, 255});
    const Box container = Container();
    DrawFace(canvas, view, container, kFloorFace, {224, 224, 224});
    DrawFace(canvas, view, container, kBackFace, {240, 240, 240});
    DrawFace(canvas, view, container, kLeftFace, {232, 232, 232});
    // The three edges that meet at the far bottom-left corner (0, container_y, 0).
    const int32_t x = container_[0], y = container_[1], z = container_[2];
    for (const Box& edge :
         {Box{{0, x, y, y, 0, 0}}, Box{{0, 0, y, 0, 0, 0}}, Box{{0, 0, y, y, 0, z}}}) {
      DrawEdge(canvas, view, edge, {176, 176, 176});
    }
    int order[kMaxItems];
    const int n = DrawingOrder(s, view, order);
    for (int k = 0; k < n; ++k) {
      const int i = order[k];
      const Box box = ItemBox(s, i);
      const Color color = ItemColor(i);
      const Color edge = {64, 64, 64};
      DrawFace(canvas, view, box, kFrontFace, Shade(color, 0.85));
      DrawFace(canvas, view, box, kTopFace, Lighten(color, 0.3));
      DrawFace(canvas, view, box, kRightFace, Shade(color, 0.65));
      for (int face : {kFrontFace, kTopFace, kRightFace}) {
        OutlineFace(canvas, view, box, face, edge);
      }
    }
    for (int face : {kFrontFace, kTopFace, kRightFace}) {
      OutlineFace(canvas, view, container, face, {48, 48, 48});
    }
    int placed = 0, real = 0;
    double packed = 0;
    for (int i = 0; i < num_items_; ++i) {
      real += s.items_mask >> i & 1u;
      if (s.items_placed >> i & 1u) {
        ++placed;
        packed += static_cast<double>(s.item_size[0][i]) * s.item_size[1][i] * s.item_size[2][i];
      }
    }
    const double capacity = static_cast<double>(container_[0]) * container_[1] * container_[2];
    char text[64];
    std::snprintf(text, sizeof(text), "%d/%d  %.1f%%", placed, real, 100.0 * packed / capacity);
    canvas.Text(kMargin, kMargin, text, 3, {48, 48, 48});
  }

 private:
  // Drawing (Draw): an oblique parallel projection. A point (x, y, z) in mm
  // is drawn at (origin_x + scale (x + kRecede cos(a) y),
  // origin_y - scale (z + kRecede sin(a) y)), a = kRecedeAngle.
  static constexpr int kFrameHeight = 400;
  static constexpr int kFrameWidth = 600;
  static constexpr int kMargin = 16;
  static constexpr int kHeader = 48;  // the text line above the container
  static constexpr double kRecede = 0.6;
  static constexpr double kRecedeAngle = M_PI / 6;
  enum Face { kFrontFace, kTopFace, kRightFace, kFloorFace, kBackFace, kLeftFace };

  struct View {
    double scale, origin_x, origin_y, dx, dy;  // (dx, dy): the screen step of 1 mm along y
    double X(double x, double y) const { return origin_x + scale * x + dx * y; }
    double Y(double y, double z) const { return origin_y - scale * z + dy * y; }
  };

  View MakeView() const {
    const double cx = kRecede * std::cos(kRecedeAngle), cy = kRecede * std::sin(kRecedeAngle);
    const double width = container_[0] + cx * container_[1];
    const double height = container_[2] + cy * container_[1];
    const double scale = std::min((kFrameWidth - 2.0 * kMargin) / width,
                                  (kFrameHeight - kHeader - kMargin) / height);
    View v;
    v.scale = scale;
    v.origin_x = (kFrameWidth - scale * width) / 2;
    v.origin_y = kFrameHeight - kMargin;
    v.dx = scale * cx;
    v.dy = -scale * cy;
    return v;
  }

  // The corners of one face of `b` on screen, in order around it.
  static void FaceCorners(const View& v, const Box& b, int face, double* xs, double* ys) {
    const int x1 = b.c[0], x2 = b.c[1], y1 = b.c[2], y2 = b.c[3], z1 = b.c[4], z2 = b.c[5];
    int corners[4][3];
    auto set = [&corners](int k, int x, int y, int z) {
      corners[k][0] = x;
      corners[k][1] = y;
      corners[k][2] = z;
    };
    switch (face) {
      case kFrontFace:  // y = y1
      case kBackFace: {  // y = y2
        const int y = face == kFrontFace ? y1 : y2;
        set(0, x1, y, z1), set(1, x2, y, z1), set(2, x2, y, z2), set(3, x1, y, z2);
        break;
      }
      case kTopFace:  // z = z2
      case kFloorFace: {  // z = z1
        const int z = face == kTopFace ? z2 : z1;
        set(0, x1, y1, z), set(1, x2, y1, z), set(2, x2, y2, z), set(3, x1, y2, z);
        break;
      }
      default: {  // kRightFace: x = x2, kLeftFace: x = x1
        const int x = face == kRightFace ? x2 : x1;
        set(0, x, y1, z1), set(1, x, y2, z1), set(2, x, y2, z2), set(3, x, y1, z2);
      }
    }
    for (int k = 0; k < 4; ++k) {
      xs[k] = v.X(corners[k][0], corners[k][1]);
      ys[k] = v.Y(corners[k][1], corners[k][2]);
    }
  }

  static void DrawFace(Canvas& canvas, const View& v, const Box& b, int face, Color c) {
    double xs[4], ys[4];
    FaceCorners(v, b, face, xs, ys);
    canvas.FillPolygon(xs, ys, 4, c);
  }
  static void OutlineFace(Canvas& canvas, const View& v, const Box& b, int face, Color c) {
    double xs[4], ys[4];
    FaceCorners(v, b, face, xs, ys);
    canvas.StrokePolygon(xs, ys, 4, 1.0, c);
  }
  // The segment from (c[0], c[2], c[4]) to (c[1], c[3], c[5]).
  static void DrawEdge(Canvas& canvas, const View& v, const Box& e, Color c) {
    canvas.Line(v.X(e.c[0], e.c[2]), v.Y(e.c[2], e.c[4]), v.X(e.c[1], e.c[3]),
                v.Y(e.c[3], e.c[5]), 1.0, c);
  }

  static Box ItemBox(const State& s, int i) {
    Box b;
    for (int a = 0; a < 3; ++a) {
      b.c[2 * a] = s.item_location[a][i];
      b.c[2 * a + 1] = s.item_location[a][i] + s.item_size[a][i];
    }
    return b;
  }

  // Hue i / max_num_items at saturation 0.7 and value 0.95.
  Color ItemColor(int i) const {
    const double h = 6.0 * i / num_items_, f = h - std::floor(h);
    const double v = 0.95 * 255, p = v * 0.3, q = v * (1 - 0.7 * f), t = v * (1 - 0.7 * (1 - f));
    double r, g, b;
    switch (static_cast<int>(h) % 6) {
      case 0: r = v, g = t, b = p; break;
      case 1: r = q, g = v, b = p; break;
      case 2: r = p, g = v, b = t; break;
      case 3: r = p, g = q, b = v; break;
      case 4: r = t, g = p, b = v; break;
      default: r = v, g = p, b = q;
    }
    return {static_cast<uint8_t>(std::lround(r)), static_cast<uint8_t>(std::lround(g)),
            static_cast<uint8_t>(std::lround(b))};
  }
  // Darker (factor < 1) or towards white (Lighten): both keep the hue.
  static Color Shade(Color c, double factor) {
    auto f = [factor](uint8_t x) { return static_cast<uint8_t>(std::lround(x * factor)); };
    return {f(c.r), f(c.g), f(c.b)};
  }
  static Color Lighten(Color c, double amount) {
    auto f = [amount](uint8_t x) {
      return static_cast<uint8_t>(std::lround(x + (255 - x) * amount));
    };
    return {f(c.r), f(c.g), f(c.b)};
  }

  // The placed items in painter's order, into `order`; returns their count.
  // Two items must be drawn in a fixed order only when their pictures
  // overlap. Then, as they do not intersect, a plane x, y or z = const
  // separates them, and the one on the viewer's side of it (larger x, smaller
  // y, larger z) is nearer: any line of sight through both meets it first.
  // Pictures of boxes in a parallel view are hexagons with edges along the
  // three axes' directions, and two of them overlap exactly when their
  // extents overlap across each of those three directions. The order is a
  // topological sort of "must be drawn before" (ties and cycles, which only
  // interlocked boxes can form, broken by the distance along the line of
  // sight).
  int DrawingOrder(const State& s, const View& v, int* order) const {
    // Screen directions perpendicular to the pictures of the x, y and z axes.
    const double normals[3][2] = {{0, 1}, {-v.dy, v.dx}, {1, 0}};
    double low[kMaxItems][3], high[kMaxItems][3], depth[kMaxItems];
    Box box[kMaxItems];
    const uint32_t placed = s.items_placed & items_bits_;
    for (uint32_t m = placed; m; m &= m - 1) {
      const int i = __builtin_ctz(m);
      box[i] = ItemBox(s, i);
      for (int d = 0; d < 3; ++d) {
        low[i][d] = HUGE_VAL;
        high[i][d] = -HUGE_VAL;
        for (int corner = 0; corner < 8; ++corner) {
          const int x = box[i].c[corner & 1], y = box[i].c[2 + (corner >> 1 & 1)];
          const int z = box[i].c[4 + (corner >> 2)];
          const double p = normals[d][0] * v.X(x, y) + normals[d][1] * v.Y(y, z);
          low[i][d] = std::min(low[i][d], p);
          high[i][d] = std::max(high[i][d], p);
        }
      }
      const Box& b = box[i];
      depth[i] = kRecede * std::cos(kRecedeAngle) * (b.c[0] + b.c[1]) - (b.c[2] + b.c[3]) +
                 kRecede * std::sin(kRecedeAngle) * (b.c[4] + b.c[5]);
    }
    uint32_t before[kMaxItems] = {};  // before[i] bit j: j must be drawn before i
    for (uint32_t m = placed; m; m &= m - 1) {
      const int i = __builtin_ctz(m);
      for (uint32_t rest = m & (m - 1); rest; rest &= rest - 1) {
        const int j = __builtin_ctz(rest);
        bool overlap = true;
        for (int d = 0; d < 3; ++d) {
          overlap &= low[i][d] < high[j][d] - 1e-6 && low[j][d] < high[i][d] - 1e-6;
        }
        if (!overlap) continue;
        const Box &a = box[i], &b = box[j];
        if (a.c[1] <= b.c[0] || b.c[3] <= a.c[2] || a.c[5] <= b.c[4]) {
          before[j] |= 1u << i;
        } else if (b.c[1] <= a.c[0] || a.c[3] <= b.c[2] || b.c[5] <= a.c[4]) {
          before[i] |= 1u << j;
        }
      }
    }
    int n = 0;
    for (uint32_t left = placed; left; ++n) {
      int pick = -1, fallback = -1;
      for (uint32_t m = left; m; m &= m - 1) {
        const int i = __builtin_ctz(m);
        if (fallback < 0 || depth[i] < depth[fallback]) fallback = i;
        if (!(before[i] & left) && (pick < 0 || depth[i] < depth[pick])) pick = i;
      }
      order[n] = pick >= 0 ? pick : fallback;
      left &= ~(1u << order[n]);
    }
    return n;
  }

  Box Container() const {
    return Box{{0, container_[0], 0, container_[1], 0, container_[2]}};
  }

  // Jumanji's volumes are float32 products ((x * y) * z) of int lengths.
  static float Volume(int32_t x, int32_t y, int32_t z) {
    return static_cast<float>(x) * static_cast<float>(y) * static_cast<float>(z);
  }

  // space.py semantics: a box is empty when a side has zero or negative
  // length, so boxes that only touch do not intersect; inclusion allows
  // equality.
  static bool IsEmpty(const Box& b) {
    return (b.c[0] >= b.c[1]) | (b.c[2] >= b.c[3]) | (b.c[4] >= b.c[5]);
  }

  // Boxes and sizes packed for branch-free comparison, four 16-bit fields to
  // a word: 15 value bits (sides are at most 32767 mm) under a guard bit.
  // `(big | guard) - small` then never borrows across fields, and a field's
  // guard bit survives exactly when big >= small there. A box packs its low
  // sides as 32767 - lo, so "inner lies inside outer" reads "every field of
  // inner <= the field of outer".
  struct Key {
    uint64_t xy, z;
  };
  static constexpr uint64_t kGuard4 = 0x8000800080008000ULL;
  static constexpr uint64_t kGuard3 = 0x0000800080008000ULL;
  static constexpr uint64_t kGuard2 = 0x0000000080008000ULL;
  static constexpr int32_t kTop = 0x7FFF;
  static bool AllFieldsLessEqual(uint64_t small, uint64_t big, uint64_t guard) {
    return (((big | guard) - small) & guard) == guard;
  }
  static Key MakeKey(int32_t x1, int32_t x2, int32_t y1, int32_t y2, int32_t z1, int32_t z2) {
    return {static_cast<uint64_t>(kTop - x1) | static_cast<uint64_t>(x2) << 16 |
                static_cast<uint64_t>(kTop - y1) << 32 | static_cast<uint64_t>(y2) << 48,
            static_cast<uint64_t>(kTop - z1) | static_cast<uint64_t>(z2) << 16};
  }
  static Key MakeKey(const Box& b) {
    return MakeKey(b.c[0], b.c[1], b.c[2], b.c[3], b.c[4], b.c[5]);
  }
  static Key SlotKey(const State& s, int slot) {
    return MakeKey(s.ems[0][slot], s.ems[1][slot], s.ems[2][slot], s.ems[3][slot],
                   s.ems[4][slot], s.ems[5][slot]);
  }
  static bool Inside(const Key& inner, const Key& outer) {
    return AllFieldsLessEqual(inner.xy, outer.xy, kGuard4) &
           AllFieldsLessEqual(inner.z, outer.z, kGuard2);
  }
  static uint64_t PackSize(int32_t x, int32_t y, int32_t z) {
    return static_cast<uint64_t>(x) | static_cast<uint64_t>(y) << 16 |
           static_cast<uint64_t>(z) << 32;
  }

  // The items still to place, packed, for fit tests against new EMSs.
  struct OpenItems {
    uint64_t size[kMaxItems];
    uint8_t id[kMaxItems];
    int count = 0;
  };
  static OpenItems ListOpenItems(const State& s) {
    OpenItems open;
    for (uint32_t m = s.items_mask & ~s.items_placed; m; m &= m - 1) {
      const int i = __builtin_ctz(m);
      open.size[open.count] = PackSize(s.item_size[0][i], s.item_size[1][i], s.item_size[2][i]);
      open.id[open.count++] = static_cast<uint8_t>(i);
    }
    return open;
  }
  // env.py `_get_action_mask` for one EMS: an item fits when it is no longer
  // than the EMS on every axis (no rotation, no support rule).
  static uint32_t Fits(const OpenItems& open, const Box& b) {
    const uint64_t room = PackSize(b.c[1] - b.c[0], b.c[3] - b.c[2], b.c[5] - b.c[4]);
    uint32_t fits = 0;
    for (int j = 0; j < open.count; ++j) {
      fits |= static_cast<uint32_t>(AllFieldsLessEqual(open.size[j], room, kGuard3)) << open.id[j];
    }
    return fits;
  }

  // jnp.argmin(mask) over the first max_num_items entries: the lowest False
  // one, or 0 when all are True.
  int FirstFree(uint32_t mask) const {
    const uint32_t free = ~mask & items_bits_;
    return free ? __builtin_ctz(free) : 0;
  }

  // One EMS slot holding the whole container, the rest zero; nothing placed.
  void StartEpisode(State& s) const {
    std::memset(s.ems, 0, sizeof(s.ems));
    std::memset(s.fits, 0, sizeof(s.fits));
    std::memset(s.sorted_ems, 0, sizeof(s.sorted_ems));
    std::memset(s.item_location, 0, sizeof(s.item_location));
    const Box container = Container();
    for (int c = 0; c < 6; ++c) s.ems[c][0] = static_cast<int16_t>(container.c[c]);
    s.ems_mask = 1;
    s.items_placed = 0;
    s.fits[0] = Fits(ListOpenItems(s), container);
    SortEms(s);
  }

  // env.py `_update_ems` for the item just placed at `placed`.
  void UpdateEms(State& s, const Box& placed) const {
    constexpr int kMaxCandidates = 6 * kMaxEms;
    // 1. EMSs whose interior the item overlaps are deleted; their coordinates
    //    stay in the slot (stale). For step 4, also note the survivors that
    //    touch a face of the item and overlap it on the other two axes.
    uint64_t hit = 0;
    uint64_t touching[6] = {};
    for (uint64_t m = s.ems_mask; m; m &= m - 1) {
      const int k = __builtin_ctzll(m);
      bool overlaps[3];
      for (int a = 0; a < 3; ++a) {
        overlaps[a] = std::max<int32_t>(placed.c[2 * a], s.ems[2 * a][k]) <
                      std::min<int32_t>(placed.c[2 * a + 1], s.ems[2 * a + 1][k]);
      }
      hit |= static_cast<uint64_t>(overlaps[0] & overlaps[1] & overlaps[2]) << k;
      for (int a = 0; a < 3; ++a) {
        const bool others = overlaps[(a + 1) % 3] & overlaps[(a + 2) % 3];
        touching[2 * a] |= static_cast<uint64_t>(others & (s.ems[2 * a + 1][k] == placed.c[2 * a]))
                           << k;
        touching[2 * a + 1] |=
            static_cast<uint64_t>(others & (s.ems[2 * a][k] == placed.c[2 * a + 1])) << k;
      }
    }
    uint64_t mask = s.ems_mask & ~hit;

    // 2. Candidates: each deleted EMS cut by the six half-spaces beyond the
    //    item's faces, in Jumanji's order (x lower, x upper, y lower, ...,
    //    then slot ascending). Jumanji forms them for every slot and masks
    //    out those of surviving EMSs (a cut of an EMS lies inside it), so only
    //    the deleted ones can contribute.
    Box box[kMaxCandidates];
    Key key[kMaxCandidates];
    bool alive[kMaxCandidates];
    int begin[7];
    int n = 0;
    for (int d = 0; d < 6; ++d) {
      begin[d] = n;
      const int axis = d / 2;
      for (uint64_t m = hit; m; m &= m - 1) {
        const int k = __builtin_ctzll(m);
        Box& b = box[n];
        for (int c = 0; c < 6; ++c) b.c[c] = s.ems[c][k];
        if (d % 2 == 0) {
          b.c[2 * axis + 1] = std::min(b.c[2 * axis + 1], placed.c[2 * axis]);
        } else {
          b.c[2 * axis] = std::max(b.c[2 * axis], placed.c[2 * axis + 1]);
        }
        if (IsEmpty(b)) continue;
        key[n] = MakeKey(b);
        ++n;
      }
    }
    begin[6] = n;

    // 3. Drop candidates strictly inside another candidate. Jumanji runs a
    //    double loop over (direction d, direction a), dropping a candidate of
    //    d when a candidate of a still alive at that point strictly contains
    //    it. Only a == d can ever drop anything. Every candidate is a cut of
    //    an EMS that overlaps the item: on its cut axis it ends at (or starts
    //    from) one face of the item, and on each other axis it keeps its
    //    parent's extent, which reaches into the item's extent. So a
    //    candidate cut on axis X cannot lie inside one cut on another axis Y
    //    (on Y it reaches into the item, the other stops at the item's face),
    //    nor inside one cut on the other side of X. Within a direction all
    //    drops are decided together (one vectorised step in Jumanji), so
    //    equal candidates both survive.
    for (int i = 0; i < n; ++i) alive[i] = true;
    for (int d = 0; d < 6; ++d) {
      bool contained[kMaxEms] = {};
      for (int i = begin[d]; i < begin[d + 1]; ++i) {
        for (int j = i + 1; j < begin[d + 1]; ++j) {
          const bool i_in_j = Inside(key[i], key[j]), j_in_i = Inside(key[j], key[i]);
          contained[i - begin[d]] |= i_in_j & !j_in_i;
          contained[j - begin[d]] |= j_in_i & !i_in_j;
        }
      }
      for (int i = begin[d]; i < begin[d + 1]; ++i) alive[i] = !contained[i - begin[d]];
    }

    // 4. Insert the survivors in order, each unless a live EMS (including
    //    one just inserted) already contains it, into the lowest free slot.
    //    Quirk kept from Jumanji: when all slots are live, argmin(mask) is 0
    //    and the new EMS overwrites slot 0.
    //    Only two kinds of live EMS can contain a candidate cut in direction
    //    d: another candidate of d (see 3.), or a surviving EMS that touches
    //    the item's face on that side and overlaps the item on the other two
    //    axes (it must span the candidate's extent there, which overlaps the
    //    item, and it does not overlap the item, so on the cut axis it ends
    //    at the face). `could_contain[d]` tracks both.
    Key slot_key[kMaxEms];
    uint64_t could_contain[6];
    for (int d = 0; d < 6; ++d) {
      could_contain[d] = touching[d] & mask;
      for (uint64_t m = could_contain[d]; m; m &= m - 1) {
        const int k = __builtin_ctzll(m);
        slot_key[k] = SlotKey(s, k);
      }
    }
    OpenItems open;
    bool open_listed = false;
    for (int d = 0; d < 6; ++d) {
      for (int i = begin[d]; i < begin[d + 1]; ++i) {
        if (!alive[i]) continue;
        bool covered = false;
        for (uint64_t m = could_contain[d]; m; m &= m - 1) {
          covered |= Inside(key[i], slot_key[__builtin_ctzll(m)]);
        }
        if (covered) continue;
        const uint64_t free = ~mask & slots_mask_;
        const int slot = free ? __builtin_ctzll(free) : 0;
        for (int c = 0; c < 6; ++c) s.ems[c][slot] = static_cast<int16_t>(box[i].c[c]);
        slot_key[slot] = key[i];
        mask |= 1ULL << slot;
        for (uint64_t& c : could_contain) c &= ~(1ULL << slot);  // slot 0 may be overwritten
        could_contain[d] |= 1ULL << slot;
        if (!open_listed) {
          open = ListOpenItems(s);
          open_listed = true;
        }
        s.fits[slot] = Fits(open, box[i]);
      }
    }
    s.ems_mask = mask;
  }

  // env.py `_get_set_of_largest_ems`: jnp.argsort(-volume * mask) is a
  // stable sort, so live EMSs come first by float32 volume, descending, ties
  // by slot; then every dead slot (volume -0.0) in slot order.
  void SortEms(State& s) const {
    float volume[kMaxEms];
    int num_live = 0;
    for (uint64_t m = s.ems_mask; m; m &= m - 1) {
      const int slot = __builtin_ctzll(m);
      const float v = Volume(s.ems[1][slot] - s.ems[0][slot], s.ems[3][slot] - s.ems[2][slot],
                             s.ems[5][slot] - s.ems[4][slot]);
      int k = num_live++;
      for (; k > 0 && volume[k - 1] < v; --k) {
        volume[k] = volume[k - 1];
        s.sorted_ems[k] = s.sorted_ems[k - 1];
      }
      volume[k] = v;
      s.sorted_ems[k] = static_cast<uint8_t>(slot);
    }
    s.num_live = static_cast<uint8_t>(num_live);
    int k = num_live;
    for (uint64_t m = ~s.ems_mask & slots_mask_; m; m &= m - 1) {
      s.sorted_ems[k++] = static_cast<uint8_t>(__builtin_ctzll(m));
    }
  }

  // Jumanji's done flag: no valid action among the observed EMSs.
  bool AnyValidAction(const State& s) const {
    uint32_t any = 0;
    const int observed_live = std::min<int>(s.num_live, obs_num_ems_);
    for (int e = 0; e < observed_live; ++e) any |= s.fits[s.sorted_ems[e]];
    return any != 0;
  }

  // The flat action mask, row e = fits[sorted_ems[e]] (empty for dead
  // EMSs), written as bools eight at a time through a table that maps a byte
  // to eight 0/1 bytes.
  void WriteActionMask(const State& s, bool* out) const {
    struct Table {
      uint64_t bytes[256];
      constexpr Table() : bytes() {
        for (int b = 0; b < 256; ++b) {
          for (int k = 0; k < 8; ++k) bytes[b] |= static_cast<uint64_t>(b >> k & 1) << (8 * k);
        }
      }
    };
    static constexpr Table kTable{};
    uint64_t pending = 0;  // bits not yet written, at most 7 + 32 of them
    int num_pending = 0;
    for (int e = 0; e < obs_num_ems_; ++e) {
      const uint64_t row = e < s.num_live ? s.fits[s.sorted_ems[e]] : 0u;
      pending |= row << num_pending;
      num_pending += num_items_;
      for (; num_pending >= 8; num_pending -= 8, pending >>= 8, out += 8) {
        std::memcpy(out, &kTable.bytes[pending & 0xFF], 8);
      }
    }
    for (int k = 0; k < num_pending; ++k) out[k] = pending >> k & 1u;
  }

  int num_items_;
  int num_ems_;
  int obs_num_ems_;
  int split_num_same_items_;
  float split_eps_;
  double prob_split_one_item_;
  int32_t container_[3];
  float inverse_container_[3];
  float container_volume_;
  uint64_t slots_mask_;   // bits [0, max_num_ems)
  uint32_t items_bits_;   // bits [0, max_num_items)
};

}  // namespace pyenvpool
