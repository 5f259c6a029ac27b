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
// The canvas does not own its pixels: the pool hands it one row of a batch of
// frames, so envs draw in parallel into one NumPy array.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
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
    for (int64_t p = 0; p < int64_t{height_} * width_; ++p) Put(p, c);
  }

  void SetPixel(int x, int y, Color c) {
    if (x >= 0 && x < width_ && y >= 0 && y < height_) Put(int64_t{y} * width_ + x, c);
  }

  // The axis-aligned rectangle [x0, x1) x [y0, y1).
  void FillRect(double x0, double y0, double x1, double y1, Color c) {
    const int j0 = First(std::min(x0, x1)), j1 = First(std::max(x0, x1));
    const int i0 = std::max(0, First(std::min(y0, y1)));
    const int i1 = std::min(height_, First(std::max(y0, y1)));
    for (int i = i0; i < i1; ++i) Span(i, j0, j1, c);
  }

  // A simple polygon (convex or not) with n vertices, filled by the even-odd
  // rule: scanline by scanline through the pixel centres.
  void FillPolygon(const double* xs, const double* ys, int n, Color c) {
    if (n < 3) return;
    double y_min = ys[0], y_max = ys[0];
    for (int k = 1; k < n; ++k) {
      y_min = std::min(y_min, ys[k]);
      y_max = std::max(y_max, ys[k]);
    }
    const int i0 = std::max(0, First(y_min)), i1 = std::min(height_, First(y_max));
    std::vector<double> crossings;
    for (int i = i0; i < i1; ++i) {
      const double y = i + 0.5;
      crossings.clear();
      for (int k = 0, prev = n - 1; k < n; prev = k++) {
        const double ya = ys[prev], yb = ys[k];
        if ((ya <= y && y < yb) || (yb <= y && y < ya)) {
          crossings.push_back(xs[prev] + (y - ya) / (yb - ya) * (xs[k] - xs[prev]));
        }
      }
      std::sort(crossings.begin(), crossings.end());
      for (size_t k = 0; k + 1 < crossings.size(); k += 2) {
        Span(i, First(crossings[k]), First(crossings[k + 1]), c);
      }
    }
  }

  void FillCircle(double cx, double cy, double radius, Color c) {
    const int i0 = std::max(0, First(cy - radius)), i1 = std::min(height_, First(cy + radius));
    for (int i = i0; i < i1; ++i) {
      const double dy = i + 0.5 - cy;
      const double half = std::sqrt(std::max(0.0, radius * radius - dy * dy));
      Span(i, First(cx - half), First(cx + half), c);
    }
  }

  // A segment of the given width, drawn as a rectangle around it.
  void Line(double x0, double y0, double x1, double y1, double width, Color c) {
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

 private:
  // The first pixel index whose centre lies at or beyond coordinate v.
  static int First(double v) {
    const double f = std::ceil(v - 0.5);
    return static_cast<int>(std::clamp(f, -1.0e9, 1.0e9));
  }

  // Pixels [j0, j1) of row i, clipped.
  void Span(int i, int j0, int j1, Color c) {
    j0 = std::max(j0, 0);
    j1 = std::min(j1, width_);
    for (int j = j0; j < j1; ++j) Put(int64_t{i} * width_ + j, c);
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
