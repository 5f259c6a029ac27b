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

#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.h"

namespace pyenvpool {

template <class Slot>
class SnapshotStore {
 public:
  struct Record {
    Slot slot;
    uint32_t generation = 1;
    bool live = false;
    bool terminated = false;  // the stored state ended its episode (simulate only)
    bool truncated = false;
  };

  explicit SnapshotStore(int64_t max_snapshots) : max_snapshots_(max_snapshots) {}

  int64_t count() const { return count_; }
  int64_t max_snapshots() const { return max_snapshots_; }
  static constexpr int64_t record_bytes() { return sizeof(Record); }
  int64_t bytes_in_use() const { return count_ * record_bytes(); }
  int64_t bytes_reserved() const {
    return static_cast<int64_t>(records_.capacity()) * record_bytes();
  }

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
    if (id < 0) return false;
    const uint64_t index = static_cast<uint64_t>(id) & 0xFFFFFFFFULL;
    const uint32_t generation = static_cast<uint32_t>(static_cast<uint64_t>(id) >> 32);
    return index < records_.size() && records_[index].live &&
           records_[index].generation == generation;
  }

  // Call CheckCapacity first. May grow the slab (invalidates Record pointers).
  int64_t Allocate() {
    uint32_t index;
    if (!free_.empty()) {
      index = free_.back();
      free_.pop_back();
    } else {
      index = static_cast<uint32_t>(records_.size());
      records_.emplace_back();
    }
    Record& r = records_[index];
    r.live = true;
    ++count_;
    return static_cast<int64_t>((static_cast<uint64_t>(r.generation) << 32) | index);
  }

  // The id must be live.
  Record& Get(int64_t id) { return records_[static_cast<uint64_t>(id) & 0xFFFFFFFFULL]; }

  // The id must be live.
  void Release(int64_t id) {
    const uint32_t index = static_cast<uint32_t>(static_cast<uint64_t>(id) & 0xFFFFFFFFULL);
    Record& r = records_[index];
    r.live = false;
    r.generation = r.generation == 0x7FFFFFFFU ? 1 : r.generation + 1;  // ids stay positive
    free_.push_back(index);
    --count_;
  }

 private:
  std::vector<Record> records_;
  std::vector<uint32_t> free_;
  int64_t count_ = 0;
  int64_t max_snapshots_;
};

}  // namespace pyenvpool
