// The task concept: what a task header provides, and what the pool derives.
//
// A task is a class with
//   static constexpr const char* kId;          // "Name-vN", the id make() takes
//   struct State { Rng rng; ... };              // trivially copyable, fixed size
//   explicit Task(Kwargs& kwargs);              // reads and checks its kwargs
//   TaskSpec Spec() const;                      // observation fields, num_actions
//   void Reset(State&) const;                   // a new episode, drawn from s.rng
//   StepResult Step(State&, int32_t action) const;
//   void WriteObs(const State&, const ObsRow&) const;
// and optionally
//   static constexpr int64_t kMinChunk;         // envs per thread chunk (default 256)
//   void LoadInstance(State&, const InstanceRow&) const;  // reset(instances=...)
//   std::string Render(const State&) const;     // pool.render(i)
//   std::string CheckState(const State&) const; // "" or why an imported state is bad
//
// Contract:
// - Everything that determines an env's future lives in State, its RNG
//   included, so a snapshot is a byte copy and a restored env continues
//   exactly. The pool seeds `state.rng` before the first Reset; Reset and Step
//   draw randomness only from it.
// - Reset, Step and WriteObs are const and touch nothing but their arguments:
//   the pool calls them for many envs at once on its worker threads.
// - Step never sees an action outside [0, num_actions): the bindings check.
//   It is never called on a finished episode: the pool resets (live envs) or
//   stops stepping (simulated states) once terminated or truncated is set.
// - WriteObs writes every element of every field of its row, within the
//   field's bounds.
// - LoadInstance (only called when Spec declares instance_fields) may throw
//   ValueError for a bad row; it is called on a scratch copy, so the pool is
//   unchanged when it throws.
// - CheckState guards what Step indexes with (positions, counts): without it,
//   any bytes that pass the export checksum must be a state Step can run.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "core/errors.h"
#include "core/spec.h"

namespace pyenvpool {

// What a task's Step returns.
struct StepResult {
  float reward = 0.0f;
  bool terminated = false;
  bool truncated = false;
};

// Detection of the optional members.
template <class Task, class = void>
struct HasStateCheck : std::false_type {};
template <class Task>
struct HasStateCheck<Task, std::void_t<decltype(std::declval<const Task&>().CheckState(
                               std::declval<const typename Task::State&>()))>> : std::true_type {};

template <class Task, class = void>
struct HasLoadInstance : std::false_type {};
template <class Task>
struct HasLoadInstance<
    Task, std::void_t<decltype(std::declval<const Task&>().LoadInstance(
              std::declval<typename Task::State&>(), std::declval<const InstanceRow&>()))>>
    : std::true_type {};

template <class Task, class = void>
struct HasRender : std::false_type {};
template <class Task>
struct HasRender<Task, std::void_t<decltype(std::declval<const Task&>().Render(
                           std::declval<const typename Task::State&>()))>> : std::true_type {};

template <class Task, class = void>
struct HasMinChunk : std::false_type {};
template <class Task>
struct HasMinChunk<Task, std::void_t<decltype(Task::kMinChunk)>> : std::true_type {};

// The fewest envs a worker thread is woken for: below it one thread does the
// whole batch. Tasks whose step costs ~10 ns set a few thousand; costly ones less.
template <class Task>
constexpr int64_t MinChunk() {
  if constexpr (HasMinChunk<Task>::value) {
    return Task::kMinChunk;
  } else {
    return 256;
  }
}

template <class Task>
void LoadTaskInstance(const Task& task, typename Task::State& s, const InstanceRow& row) {
  if constexpr (HasLoadInstance<Task>::value) {
    task.LoadInstance(s, row);
  } else {
    (void)task, (void)s, (void)row;
    throw ValueError(std::string(Task::kId) + " does not accept instances");
  }
}

template <class Task>
std::string RenderTaskState(const Task& task, const typename Task::State& s) {
  if constexpr (HasRender<Task>::value) {
    return task.Render(s);
  } else {
    (void)task, (void)s;
    return std::string(Task::kId) + " (the task has no text rendering)";
  }
}

}  // namespace pyenvpool
