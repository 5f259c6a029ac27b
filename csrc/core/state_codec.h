// StateCodec: the byte format of exported snapshots.
//
//   "PYENVPOOL-STATE\0"       16-byte magic
//   uint32 format version     (kVersion)
//   uint32 record bytes       sizeof the pool's snapshot record
//   uint64 count
//   uint32 len, task id       e.g. "Maze-v0"
//   uint32 len, config        every task parameter, "key=value;..."
//   count * record bytes      the records, as the engine stores them
//   uint64 checksum           FNV-1a over everything before it
//
// Native byte order: states move between processes and machines running the
// same pyenvpool build on the same platform. Open() refuses a blob from another
// task, configuration, record layout or version, and any truncated or altered
// blob (checksum), each with a ValueError saying which.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "core/errors.h"

namespace pyenvpool {

class StateCodec {
 public:
  static constexpr uint32_t kVersion = 1;

  StateCodec(std::string task_id, std::string config, uint32_t record_bytes)
      : task_id_(std::move(task_id)), config_(std::move(config)), record_bytes_(record_bytes) {}

  std::string Header(int64_t count) const {
    std::string out(kMagic, sizeof(kMagic));
    Put(out, kVersion);
    Put(out, record_bytes_);
    Put(out, static_cast<uint64_t>(count));
    PutString(out, task_id_);
    PutString(out, config_);
    return out;
  }

  void Seal(std::string& blob) const { Put(blob, Fnv1a(blob.data(), blob.size())); }

  // Returns (pointer to the first record, count).
  std::pair<const char*, int64_t> Open(const std::string& blob) const {
    size_t pos = 0;
    if (blob.size() < sizeof(kMagic) + 8 || std::memcmp(blob.data(), kMagic, sizeof(kMagic)) != 0) {
      throw ValueError("not a pyenvpool state export (bad magic bytes)");
    }
    if (Fnv1a(blob.data(), blob.size() - 8) != Get<uint64_t>(blob, blob.size() - 8)) {
      throw ValueError("state export is corrupted or truncated (checksum mismatch)");
    }
    pos = sizeof(kMagic);
    const auto version = Get<uint32_t>(blob, pos);
    pos += 4;
    if (version != kVersion) {
      throw ValueError("state export has format version " + std::to_string(version) +
                       "; this build reads version " + std::to_string(kVersion));
    }
    const auto record_bytes = Get<uint32_t>(blob, pos);
    pos += 4;
    const auto count = Get<uint64_t>(blob, pos);
    pos += 8;
    const std::string task_id = GetString(blob, pos);
    const std::string config = GetString(blob, pos);
    if (task_id != task_id_) {
      throw ValueError("state export is for task " + task_id + ", this pool runs " + task_id_);
    }
    if (config != config_) {
      throw ValueError("state export has task config '" + config + "', this pool has '" +
                       config_ + "'");
    }
    if (record_bytes != record_bytes_) {
      throw ValueError("state export has " + std::to_string(record_bytes) +
                       "-byte records, this build uses " + std::to_string(record_bytes_) +
                       " (another pyenvpool version?)");
    }
    if (blob.size() - 8 - pos != count * record_bytes) {
      throw ValueError("state export length does not match its record count");
    }
    return {blob.data() + pos, static_cast<int64_t>(count)};
  }

 private:
  static constexpr char kMagic[16] = {'P', 'Y', 'E', 'N', 'V', 'P', 'O', 'O',
                                      'L', '-', 'S', 'T', 'A', 'T', 'E', '\0'};

  template <class T>
  static void Put(std::string& out, T value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  static void PutString(std::string& out, const std::string& s) {
    Put(out, static_cast<uint32_t>(s.size()));
    out += s;
  }
  template <class T>
  static T Get(const std::string& blob, size_t pos) {
    if (pos + sizeof(T) > blob.size()) throw ValueError("state export is truncated");
    T value;
    std::memcpy(&value, blob.data() + pos, sizeof(T));
    return value;
  }
  static std::string GetString(const std::string& blob, size_t& pos) {
    const auto size = Get<uint32_t>(blob, pos);
    pos += 4;
    if (pos + size > blob.size()) throw ValueError("state export is truncated");
    std::string s = blob.substr(pos, size);
    pos += size;
    return s;
  }
  static uint64_t Fnv1a(const char* data, size_t size) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; ++i) {
      h ^= static_cast<uint8_t>(data[i]);
      h *= 0x100000001b3ULL;
    }
    return h;
  }

  std::string task_id_;
  std::string config_;
  uint32_t record_bytes_;
};

}  // namespace pyenvpool
