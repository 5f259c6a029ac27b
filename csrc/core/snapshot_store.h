// SnapshotStore: a slab of fixed-size records with a free list.
//
// A record holds a full copy of one environment slot (task state, RNG, step
// counter, episode totals) plus the done flags of that state. A state id is
// (generation << 32) | index: releasing a record bumps its generation, so an
// id that was released (or never issued) is detected and reported by number
// instead of silently naming whatever now lives in that slot.
//
// The store is not thread-safe by itself: the pool allocates and releases ids
// on one thread, then lets workers read and write the records it handed out.
// Allocation can grow the slab, so workers only ever see pointers taken after
// all allocation for a call has finished.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/errors.h"

namespace pyenvpool {

template <class Slot>
class SnapshotStore {
 public:
  struct Record {
    Slot slot;
    bool terminated = false;  // the stored state ended its episode (simulate only)
    bool truncated = false;
  };

  explicit SnapshotStore(int64_t max_snapshots) : max_snapshots_(max_snapshots) {}

  int64_t count() const { return count_; }
  int64_t max_snapshots() const { return max_snapshots_; }
  // Bytes per snapshot: the record plus its generation tag and live flag.
  static constexpr int64_t record_bytes() { return sizeof(Record) + sizeof(uint32_t) + 1; }
  int64_t bytes_in_use() const { return count_ * record_bytes(); }

  // Throws SnapshotCapacityError unless k more records fit under the cap.
  void CheckCapacity(int64_t k) const {
    if (count_ + k > max_snapshots_) {
      throw SnapshotCapacityError("max_snapshots=" + std::to_string(max_snapshots_) +
                                  " would be exceeded: " + std::to_string(count_) +
                                  " live snapshots + " + std::to_string(k) +
                                  " new; release some state ids first");
    }
  }

  // Throws KeyError naming the id unless it is live.
  void CheckLive(int64_t id) const {
    if (!IsLive(id)) {
      throw KeyError("state id " + std::to_string(id) +
                     " is unknown or was released (snapshot_count=" + std::to_string(count_) +
                     ")");
    }
  }

  bool IsLive(int64_t id) const {
    const uint64_t index = static_cast<uint64_t>(id) & 0xFFFFFFFFULL;
    const uint64_t generation = static_cast<uint64_t>(id) >> 32;  // >= 2^31 for negative ids
    return index < live_.size() && live_[index] && generation_[index] == generation;
  }

  // Takes k free slots (call CheckCapacity first): their indices go to
  // `indices`, reused slots first. Serial and cheap (bulk vector operations).
  // May grow the slab, which invalidates Record references, so take those
  // only after all allocation for a call is done. Each slot must then be
  // turned into an id with Activate, which threads may do in parallel.
  void Take(int64_t k, uint32_t* indices) {
    const int64_t reused = std::min<int64_t>(k, static_cast<int64_t>(free_.size()));
    std::copy(free_.end() - reused, free_.end(), indices);
    free_.resize(free_.size() - static_cast<size_t>(reused));
    const size_t first_new = records_.size();
    if (k > reused) {
      const size_t size = first_new + static_cast<size_t>(k - reused);
      records_.resize(size);
      // Zero every byte, padding included, so exported states are deterministic.
      std::memset(static_cast<void*>(records_.data() + first_new), 0,
                  sizeof(Record) * (size - first_new));
      generation_.resize(size, 1);
      live_.resize(size, 0);
      for (int64_t j = reused; j < k; ++j) {
        indices[j] = static_cast<uint32_t>(first_new + static_cast<size_t>(j - reused));
      }
    }
    count_ += k;
  }

  int64_t Activate(uint32_t index) {
    live_[index] = 1;
    return static_cast<int64_t>((static_cast<uint64_t>(generation_[index]) << 32) | index);
  }

  void Allocate(int64_t k, int64_t* ids) {
    std::vector<uint32_t> indices(k);
    Take(k, indices.data());
    for (int64_t j = 0; j < k; ++j) ids[j] = Activate(indices[j]);
  }

  // The id must be live.
  Record& Get(int64_t id) { return records_[static_cast<uint64_t>(id) & 0xFFFFFFFFULL]; }
  const Record& Get(int64_t id) const {
    return records_[static_cast<uint64_t>(id) & 0xFFFFFFFFULL];
  }

  // The id must be live.
  void Release(int64_t id) {
    const uint32_t index = static_cast<uint32_t>(static_cast<uint64_t>(id) & 0xFFFFFFFFULL);
    live_[index] = 0;
    generation_[index] = generation_[index] == 0x7FFFFFFFU ? 1 : generation_[index] + 1;
    free_.push_back(index);
    --count_;
  }

 private:
  std::vector<Record> records_;
  std::vector<uint32_t> generation_;  // ids stay positive: generation < 2^31
  std::vector<uint8_t> live_;
  std::vector<uint32_t> free_;
  int64_t count_ = 0;
  int64_t max_snapshots_;
};

}  // namespace pyenvpool
