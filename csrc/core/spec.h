// Field specs, the action space and task kwargs: the one table each task declares.
//
// A task lists its observation fields once (name, dtype, shape, bounds) and
// its action space once. The pool sizes its buffers from them, the bindings
// build NumPy views and check actions against them, and the Python side
// derives `spec` and the Gymnasium spaces from them. Tasks that accept
// `instances=` in reset declare those fields the same way.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/errors.h"

namespace pyenvpool {

enum class DType : char {
  kBool = '?',
  kUInt8 = 'B',
  kInt32 = 'i',
  kInt64 = 'q',
  kFloat32 = 'f',
  kFloat64 = 'd',
};

inline int64_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kBool:
    case DType::kUInt8:
      return 1;
    case DType::kInt32:
    case DType::kFloat32:
      return 4;
    case DType::kInt64:
    case DType::kFloat64:
      return 8;
  }
  return 0;
}

inline constexpr double kInf = std::numeric_limits<double>::infinity();

struct FieldSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // per env, without the leading batch dimension
  // Bounds: one value for every element, or one per element (row-major).
  std::vector<double> low = {-kInf};
  std::vector<double> high = {kInf};
  // An info field: a per-env value the task reports beside its observation
  // (Gymnasium's info terms, e.g. MuJoCo's reward_forward). The engine writes
  // it like an observation field (WriteObs; final_obs keeps the last step's),
  // but Python returns it in `info`, never in `obs`, so policies do not see it.
  bool info = false;

  int64_t NumElements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t RowBytes() const { return NumElements() * DTypeSize(dtype); }
};

// The action space of one env. Actions reach a task as:
//   Discrete(n)                   int32 in [0, n)                  Step(State&, int32_t)
//   MultiDiscrete({n1, ..., nk})  k int32, component c in [0, nc)  Step(State&, const int32_t*)
//   Box(shape, low, high)         prod(shape) finite float32       Step(State&, const float*)
// The bindings check ranges (and finiteness for Box) before the engine runs;
// a Box action outside [low, high] reaches the task unchanged, so the task
// treats it as its original does (Pendulum clips the torque itself).
struct ActionSpec {
  enum class Kind : char { kDiscrete, kMultiDiscrete, kBox };

  Kind kind = Kind::kDiscrete;
  std::vector<int32_t> nvec;           // Discrete: {n}; MultiDiscrete: one count per component
  std::vector<int64_t> shape;          // per env: {} (Discrete), {k} (MultiDiscrete), Box's shape
  std::vector<double> low, high;       // Box: one value for every element, or one per element

  static ActionSpec Discrete(int32_t n) { return {Kind::kDiscrete, {n}, {}, {}, {}}; }
  static ActionSpec MultiDiscrete(std::vector<int32_t> nvec) {
    const int64_t k = static_cast<int64_t>(nvec.size());
    return {Kind::kMultiDiscrete, std::move(nvec), {k}, {}, {}};
  }
  static ActionSpec Box(std::vector<int64_t> shape, std::vector<double> low,
                        std::vector<double> high) {
    return {Kind::kBox, {}, std::move(shape), std::move(low), std::move(high)};
  }

  // Scalars per env: 1, k, or the Box's element count. Each is 4 bytes
  // (int32 or float32), so a batch of actions is row-major [N, NumElements()].
  int64_t NumElements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // Logits a policy needs: n, the sum of the component counts, or 0 for Box.
  int32_t NumLogits() const {
    int32_t n = 0;
    if (kind != Kind::kBox) {
      for (int32_t c : nvec) n += c;
    }
    return n;
  }
};

struct TaskSpec {
  std::vector<FieldSpec> obs_fields;       // what step/reset write
  std::vector<FieldSpec> instance_fields;  // what reset(instances=...) accepts
  ActionSpec action;
};

// One env's row of the batch output: field f of env `row` starts at
// fields[f] + row * row_bytes[f]. Tasks write their observation through it.
struct ObsRow {
  uint8_t* const* fields;
  const int64_t* row_bytes;
  int64_t row;

  template <class T>
  T* Get(int field) const {
    return reinterpret_cast<T*>(fields[field] + row * row_bytes[field]);
  }
};

// Row `row` of the instance arrays passed to reset(instances=...), already
// checked by the bindings for dtype and shape against `instance_fields`.
struct InstanceRow {
  const uint8_t* const* fields;
  const int64_t* row_bytes;
  int64_t row;

  template <class T>
  const T* Get(int field) const {
    return reinterpret_cast<const T*>(fields[field] + row * row_bytes[field]);
  }
};

// Task keyword arguments. A task reads the keys it knows; any key left unread
// is reported as unknown, by name, together with the keys the task accepts.
class Kwargs {
 public:
  using Value = std::variant<bool, int64_t, double, std::string>;

  void Set(const std::string& key, Value value) { values_[key] = std::move(value); }

  int64_t Int(const std::string& key, int64_t fallback, int64_t low, int64_t high) {
    known_.insert(key);
    auto it = values_.find(key);
    if (it == values_.end()) return Resolve(key, fallback);
    used_.insert(key);
    const auto* v = std::get_if<int64_t>(&it->second);
    if (v == nullptr) throw TypeError("task kwarg '" + key + "' must be an int");
    if (*v < low || *v > high) {
      throw ValueError("task kwarg '" + key + "' must be in [" + std::to_string(low) + ", " +
                       std::to_string(high) + "], got " + std::to_string(*v));
    }
    return Resolve(key, *v);
  }

  double Float(const std::string& key, double fallback, double low, double high) {
    known_.insert(key);
    auto it = values_.find(key);
    if (it == values_.end()) return Resolve(key, fallback);
    used_.insert(key);
    double v;
    if (const auto* i = std::get_if<int64_t>(&it->second)) {
      v = static_cast<double>(*i);
    } else if (const auto* d = std::get_if<double>(&it->second)) {
      v = *d;
    } else {
      throw TypeError("task kwarg '" + key + "' must be a number");
    }
    if (!(v >= low && v <= high)) {  // also rejects NaN
      throw ValueError("task kwarg '" + key + "' must be in [" + std::to_string(low) + ", " +
                       std::to_string(high) + "], got " + std::to_string(v));
    }
    return Resolve(key, v);
  }

  bool Bool(const std::string& key, bool fallback) {
    known_.insert(key);
    auto it = values_.find(key);
    if (it == values_.end()) return Resolve(key, fallback);
    used_.insert(key);
    const auto* v = std::get_if<bool>(&it->second);
    if (v == nullptr) throw TypeError("task kwarg '" + key + "' must be a bool");
    return Resolve(key, *v);
  }

  std::string Choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& choices) {
    known_.insert(key);
    auto it = values_.find(key);
    if (it == values_.end()) return Resolve(key, fallback);
    used_.insert(key);
    const auto* v = std::get_if<std::string>(&it->second);
    std::string allowed;
    for (const auto& c : choices) allowed += (allowed.empty() ? "'" : ", '") + c + "'";
    if (v == nullptr) throw TypeError("task kwarg '" + key + "' must be one of " + allowed);
    for (const auto& c : choices) {
      if (*v == c) return Resolve(key, *v);
    }
    throw ValueError("task kwarg '" + key + "' must be one of " + allowed + ", got '" + *v + "'");
  }

  // Call after the task has read everything it knows.
  void CheckAllUsed(const std::string& task_id) const {
    for (const auto& [key, value] : values_) {
      if (used_.count(key)) continue;
      std::string accepted;
      for (const auto& k : known_) accepted += (accepted.empty() ? "" : ", ") + k;
      if (accepted.empty()) accepted = "none";
      throw TypeError("unknown task kwarg '" + key + "' for " + task_id +
                      " (accepted: " + accepted + ")");
    }
  }

  // Every parameter the task read, defaults included, as "key=value;..." in
  // key order: two pools with equal strings have the same configuration.
  std::string Resolved() const {
    std::string out;
    for (const auto& [key, value] : resolved_) out += key + "=" + value + ";";
    return out;
  }

 private:
  template <class T>
  T Resolve(const std::string& key, T value) {
    if constexpr (std::is_same_v<T, std::string>) {
      resolved_[key] = value;
    } else if constexpr (std::is_same_v<T, double>) {
      char text[40];
      std::snprintf(text, sizeof(text), "%.17g", value);
      resolved_[key] = text;
    } else {
      resolved_[key] = std::to_string(value);
    }
    return value;
  }

  std::map<std::string, std::string> resolved_;
  std::map<std::string, Value> values_;
  std::set<std::string> used_;
  std::set<std::string> known_;
};

}  // namespace pyenvpool
