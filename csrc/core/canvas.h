// Canvas: one RGB frame (uint8, height x width x 3, row-major) and the few
// drawing primitives the tasks' Draw methods use.
//
// Coordinates are in pixels with x to the right and y downwards; (0, 0) is
// the top-left corner of the top-left pixel, so pixel (i, j) covers
// [j, j + 1) x [i, i + 1) and its centre is (j + 0.5, i + 0.5). A shape paints
// the pixels whose centres it covers, clipped to the frame. There is no
// anti-aliasing: frames are deterministic and cheap, and the same state always
// draws the same bytes.
//
// Shapes with a non-finite coordinate (NaN, infinity) paint nothing, and
// finite ones of any size are clipped, so a Draw reading a corrupt or extreme
// state never writes outside the frame.
//
// The canvas does not own its pixels: the pool hands it one row of a batch of
// frames, so envs draw in parallel into one NumPy array.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace pyenvpool {

struct Color {
  uint8_t r, g, b;
};

class Canvas {
 public:
  Canvas(uint8_t* pixels, int height, int width)
      : pixels_(pixels), height_(height), width_(width) {}

  int height() const { return height_; }
  int width() const { return width_; }

  void Fill(Color c) {
    if (height_ <= 0) return;
    Span(0, 0, width_, c);
    const size_t row = size_t{3} * static_cast<size_t>(width_);
    for (int i = 1; i < height_; ++i) std::memcpy(pixels_ + i * row, pixels_, row);
  }

  void SetPixel(int x, int y, Color c) {
    if (x >= 0 && x < width_ && y >= 0 && y < height_) Put(int64_t{y} * width_ + x, c);
  }

  // The axis-aligned rectangle [x0, x1) x [y0, y1).
  void FillRect(double x0, double y0, double x1, double y1, Color c) {
    if (!Finite({x0, y0, x1, y1})) return;
    const int j0 = First(std::min(x0, x1)), j1 = First(std::max(x0, x1));
    const int i0 = std::max(0, First(std::min(y0, y1)));
    const int i1 = std::min(height_, First(std::max(y0, y1)));
    for (int i = i0; i < i1; ++i) Span(i, j0, j1, c);
  }

  // The border of the rectangle [x0, x1) x [y0, y1), `width` pixels thick,
  // inside the rectangle.
  void StrokeRect(double x0, double y0, double x1, double y1, double width, Color c) {
    if (!Finite({x0, y0, x1, y1, width}) || width <= 0) return;
    const double left = std::min(x0, x1), right = std::max(x0, x1);
    const double top = std::min(y0, y1), bottom = std::max(y0, y1);
    const double w = std::min(width, std::min(right - left, bottom - top) / 2);
    FillRect(left, top, right, top + w, c);
    FillRect(left, bottom - w, right, bottom, c);
    FillRect(left, top + w, left + w, bottom - w, c);
    FillRect(right - w, top + w, right, bottom - w, c);
  }

  // A simple polygon (convex or not) with n vertices, filled by the even-odd
  // rule: scanline by scanline through the pixel centres.
  void FillPolygon(const double* xs, const double* ys, int n, Color c) {
    if (n < 3) return;
    for (int k = 0; k < n; ++k) {
      if (!Finite({xs[k], ys[k]})) return;
    }
    double y_min = ys[0], y_max = ys[0];
    for (int k = 1; k < n; ++k) {
      y_min = std::min(y_min, ys[k]);
      y_max = std::max(y_max, ys[k]);
    }
    const int i0 = std::max(0, First(y_min)), i1 = std::min(height_, First(y_max));
    double inline_crossings[32];
    std::vector<double> heap_crossings(n > 32 ? n : 0);
    double* crossings = n > 32 ? heap_crossings.data() : inline_crossings;
    for (int i = i0; i < i1; ++i) {
      const double y = i + 0.5;
      int count = 0;
      for (int k = 0, prev = n - 1; k < n; prev = k++) {
        const double ya = ys[prev], yb = ys[k];
        if ((ya <= y && y < yb) || (yb <= y && y < ya)) {
          const double x = xs[prev] + (y - ya) / (yb - ya) * (xs[k] - xs[prev]);
          crossings[count++] = std::isnan(x) ? xs[prev] : x;  // NaN: an overflow of huge values
        }
      }
      std::sort(crossings, crossings + count);
      for (int k = 0; k + 1 < count; k += 2) {
        Span(i, First(crossings[k]), First(crossings[k + 1]), c);
      }
    }
  }

  // The closed outline through n vertices, each edge a Line of `width`.
  void StrokePolygon(const double* xs, const double* ys, int n, double width, Color c) {
    for (int k = 0, prev = n - 1; k < n; prev = k++) {
      Line(xs[prev], ys[prev], xs[k], ys[k], width, c);
    }
  }

  void FillCircle(double cx, double cy, double radius, Color c) {
    if (!Finite({cx, cy, radius}) || radius <= 0) return;
    const int i0 = std::max(0, First(cy - radius)), i1 = std::min(height_, First(cy + radius));
    for (int i = i0; i < i1; ++i) {
      const double dy = i + 0.5 - cy;
      const double half = std::sqrt(std::max(0.0, radius * radius - dy * dy));
      Span(i, First(cx - half), First(cx + half), c);
    }
  }

  // The ring between radius - width and radius.
  void StrokeCircle(double cx, double cy, double radius, double width, Color c) {
    if (!Finite({cx, cy, radius, width}) || radius <= 0 || width <= 0) return;
    const double inner = std::max(0.0, radius - width);
    const int i0 = std::max(0, First(cy - radius)), i1 = std::min(height_, First(cy + radius));
    for (int i = i0; i < i1; ++i) {
      const double dy = i + 0.5 - cy;
      const double outer_half = std::sqrt(std::max(0.0, radius * radius - dy * dy));
      const double d2 = inner * inner - dy * dy;
      if (d2 <= 0) {
        Span(i, First(cx - outer_half), First(cx + outer_half), c);
        continue;
      }
      const double inner_half = std::sqrt(d2);
      Span(i, First(cx - outer_half), First(cx - inner_half), c);
      Span(i, First(cx + inner_half), First(cx + outer_half), c);
    }
  }

  // A segment of the given width, drawn as a rectangle around it.
  void Line(double x0, double y0, double x1, double y1, double width, Color c) {
    if (!Finite({x0, y0, x1, y1, width}) || width <= 0) return;
    const double dx = x1 - x0, dy = y1 - y0;
    const double length = std::sqrt(dx * dx + dy * dy);
    if (length == 0) {
      FillCircle(x0, y0, width / 2, c);
      return;
    }
    const double nx = -dy / length * width / 2, ny = dx / length * width / 2;
    const double xs[4] = {x0 + nx, x1 + nx, x1 - nx, x0 - nx};
    const double ys[4] = {y0 + ny, y1 + ny, y1 - ny, y0 - ny};
    FillPolygon(xs, ys, 4, c);
  }

  // Text in a 3 x 5 pixel font scaled by `scale`, its top-left corner at
  // (x, y). The font has the digits and ` %+-./:`; other characters are
  // drawn as spaces. Each character advances 4 * scale.
  void Text(double x, double y, const char* text, double scale, Color c) {
    for (; *text != '\0'; ++text, x += 4 * scale) {
      const uint16_t glyph = Glyph(*text);
      for (int bit = 0; bit < 15; ++bit) {
        if (!(glyph >> (14 - bit) & 1)) continue;
        const double gx = x + (bit % 3) * scale, gy = y + (bit / 3) * scale;
        FillRect(gx, gy, gx + scale, gy + scale, c);
      }
    }
  }

  // The width Text draws `text` in (no spacing after the last character).
  static double TextWidth(const char* text, double scale) {
    const size_t n = std::strlen(text);
    return n == 0 ? 0.0 : (4.0 * static_cast<double>(n) - 1.0) * scale;
  }

 private:
  static bool Finite(std::initializer_list<double> values) {
    for (double v : values) {
      if (!std::isfinite(v)) return false;
    }
    return true;
  }

  // The first pixel index whose centre lies at or beyond coordinate v (finite).
  static int First(double v) {
    const double f = std::ceil(v - 0.5);
    return static_cast<int>(std::clamp(f, -1.0e9, 1.0e9));
  }

  // Rows of three bits, top row first, in the 15 low bits.
  static uint16_t Glyph(char ch) {
    static constexpr uint16_t kDigits[10] = {
        0b111'101'101'101'111, 0b010'110'010'010'111, 0b111'001'111'100'111,
        0b111'001'111'001'111, 0b101'101'111'001'001, 0b111'100'111'001'111,
        0b111'100'111'101'111, 0b111'001'001'001'001, 0b111'101'111'101'111,
        0b111'101'111'001'111};
    if (ch >= '0' && ch <= '9') return kDigits[ch - '0'];
    switch (ch) {
      case '%':
        return 0b101'001'010'100'101;
      case '+':
        return 0b000'010'111'010'000;
      case '-':
        return 0b000'000'111'000'000;
      case '.':
        return 0b000'000'000'000'010;
      case '/':
        return 0b001'001'010'100'100;
      case ':':
        return 0b000'010'000'010'000;
      default:
        return 0;
    }
  }

  // Pixels [j0, j1) of row i (a row inside the frame), clipped: eight pixels
  // (three 8-byte words) at a time, then one by one.
  void Span(int i, int j0, int j1, Color c) {
    j0 = std::max(j0, 0);
    j1 = std::min(j1, width_);
    if (j0 >= j1) return;
    uint8_t pattern[24];
    for (int k = 0; k < 24; k += 3) {
      pattern[k] = c.r;
      pattern[k + 1] = c.g;
      pattern[k + 2] = c.b;
    }
    uint64_t words[3];
    std::memcpy(words, pattern, sizeof(words));
    uint8_t* p = pixels_ + 3 * (int64_t{i} * width_ + j0);
    uint8_t* const end = p + 3 * static_cast<int64_t>(j1 - j0);
    for (; end - p >= 24; p += 24) {
      std::memcpy(p, &words[0], 8);
      std::memcpy(p + 8, &words[1], 8);
      std::memcpy(p + 16, &words[2], 8);
    }
    for (; p < end; p += 3) {
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
  }

  void Put(int64_t p, Color c) {
    uint8_t* px = pixels_ + 3 * p;
    px[0] = c.r;
    px[1] = c.g;
    px[2] = c.b;
  }

  uint8_t* pixels_;
  int height_;
  int width_;
};

}  // namespace pyenvpool
