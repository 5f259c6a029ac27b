// Buffers: the engine memory that Python sees as NumPy views.
//
// Each array lives in its own reference-counted Buffer. The pool writes into
// buffers it allocated once, at construction; a NumPy view holds a reference
// to its Buffer, so a view never dangles, even after close() or after the pool
// is garbage-collected. A view's *contents* are only stable until the next
// call on the pool that writes the same buffer (see the Python docs).
//
// BatchArrays groups the arrays one kind of call writes: observation fields,
// reward and flags, and (for live steps) final observations and episode
// totals. Targets is the raw-pointer form the stepping loops write through;
// it can also point at arrays the caller owns (step(..., out=...)).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "core/spec.h"

namespace pyenvpool {

class Buffer {
 public:
  explicit Buffer(int64_t bytes) : bytes_(bytes) {
    const size_t size = static_cast<size_t>(((bytes + 63) / 64) * 64 + 64);
    data_ = static_cast<uint8_t*>(std::aligned_alloc(64, size));
    if (data_ == nullptr) throw std::bad_alloc();
    std::memset(data_, 0, size);
  }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  uint8_t* data() const { return data_; }
  int64_t bytes() const { return bytes_; }

 private:
  uint8_t* data_;
  int64_t bytes_;
};

using BufferPtr = std::shared_ptr<Buffer>;

// Raw destinations for one batch. Row r of observation field f starts at
// obs[f] + r * row_bytes[f]; the per-row scalars are indexed by r.
struct Targets {
  std::vector<uint8_t*> obs;
  std::vector<uint8_t*> final_obs;  // empty when the call never finishes episodes
  float* reward = nullptr;
  bool* terminated = nullptr;
  bool* truncated = nullptr;
  double* episode_return = nullptr;
  int32_t* episode_length = nullptr;
};

struct BatchArrays {
  int64_t rows = 0;
  std::vector<BufferPtr> obs;
  std::vector<BufferPtr> final_obs;
  BufferPtr reward, terminated, truncated, episode_return, episode_length;

  BatchArrays() = default;
  BatchArrays(const std::vector<FieldSpec>& fields, int64_t rows_, bool with_episode_outputs)
      : rows(rows_) {
    const int64_t n = rows_ < 1 ? 1 : rows_;
    for (const auto& f : fields) obs.push_back(std::make_shared<Buffer>(n * f.RowBytes()));
    reward = std::make_shared<Buffer>(n * 4);
    terminated = std::make_shared<Buffer>(n);
    truncated = std::make_shared<Buffer>(n);
    if (with_episode_outputs) {
      for (const auto& f : fields) final_obs.push_back(std::make_shared<Buffer>(n * f.RowBytes()));
      episode_return = std::make_shared<Buffer>(n * 8);
      episode_length = std::make_shared<Buffer>(n * 4);
    }
  }

  Targets targets() const {
    Targets t;
    for (const auto& b : obs) t.obs.push_back(b->data());
    for (const auto& b : final_obs) t.final_obs.push_back(b->data());
    t.reward = reinterpret_cast<float*>(reward->data());
    t.terminated = reinterpret_cast<bool*>(terminated->data());
    t.truncated = reinterpret_cast<bool*>(truncated->data());
    if (episode_return) {
      t.episode_return = reinterpret_cast<double*>(episode_return->data());
      t.episode_length = reinterpret_cast<int32_t*>(episode_length->data());
    }
    return t;
  }
};

}  // namespace pyenvpool
