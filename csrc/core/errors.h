// Errors the engine raises. The bindings translate each to the Python
// exception named beside it; the message always says what was wrong.
//
// Every check that can fail runs before the engine changes any state, so an
// error leaves the pool exactly as it was.
#pragma once

#include <stdexcept>
#include <string>

namespace pyenvpool {

// -> TypeError: wrong type or dtype, unknown keyword.
struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// -> ValueError: right type, wrong shape, range or content.
struct ValueError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// -> KeyError: an id (state id) that is unknown, stale or released.
struct KeyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// -> pyenvpool.SnapshotCapacityError: max_snapshots would be exceeded.
struct SnapshotCapacityError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// -> RuntimeError: the pool was closed.
struct ClosedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace pyenvpool
