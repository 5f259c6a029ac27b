// The task concept: what a task header provides, and what the pool derives.
// A task header includes this file and nothing else of the engine.
//
// A task is a class with
//   static constexpr const char* kId;          // "Name-vN", the id make() takes
//   struct State { Rng rng; ... };              // trivially copyable, fixed size
//   explicit Task(Kwargs& kwargs);              // reads and checks its kwargs
//   TaskSpec Spec() const;                      // observation fields, action space
//   void Reset(State&) const;                   // a new episode, drawn from s.rng
//   StepResult Step(State&, Action action) const;
//   void WriteObs(const State&, const ObsRow&) const;
// where Action is the task's `using Action = ...;`, matching Spec().action:
//   int32_t (Discrete, the default when a task declares none),
//   const int32_t* (MultiDiscrete: one entry per component; also Discrete, as
//     one component, for a task whose kwargs choose between the two),
//   const float* (Box: the action's elements, row-major).
// and optionally
//   static constexpr int64_t kMinChunk;         // envs per thread chunk (default 256)
//   int64_t MinChunk() const;                   // the same, when the kwargs change it
//   void LoadInstance(State&, const InstanceRow&) const;  // reset(instances=...)
//   std::string Render(const State&) const;     // pool.render(i): text
//   FrameSize Frame() const;                    // rgb frames: height and width
//   void Draw(const State&, Canvas&) const;     // pool.render(ids, mode="rgb_array")
//   std::string CheckState(const State&) const; // "" or why an imported state is bad
//
// Contract:
// - Everything that determines an env's future lives in State, its RNG
//   included, so a snapshot is a byte copy and a restored env continues
//   exactly. The pool seeds `state.rng` before the first Reset; Reset and Step
//   draw randomness only from it.
// - Reset, Step, WriteObs and Draw are const and touch nothing but their
//   arguments: the pool calls them for many envs at once on its worker threads.
//   (Thread-safe scratch memory that a call overwrites before it reads it, so
//   nothing passes between calls, is allowed: the MuJoCo tasks borrow an mjData.)
// - Step never sees a discrete action outside its range, nor a Box action
//   that is NaN or infinite: the bindings check. It is never called on a
//   finished episode: the pool resets (live envs), or keeps the finished state
//   (simulated states, and live envs of a pool made with autoreset=False).
// - WriteObs writes every element of every field of its row, within the
//   field's bounds.
// - Draw paints every pixel of the canvas (Frame() x 3 channels); rendering
//   never runs unless a caller asks for frames, so it costs nothing otherwise.
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

#include "core/canvas.h"
#include "core/errors.h"
#include "core/rng.h"
#include "core/spec.h"

namespace pyenvpool {

// What a task's Step returns.
struct StepResult {
  float reward = 0.0f;
  bool terminated = false;
  bool truncated = false;
};

// Height and width, in pixels, of a task's rgb frames.
struct FrameSize {
  int height = 0;
  int width = 0;
};

// The type a task's Step takes its action as (int32_t unless it declares one).
template <class Task, class = void>
struct ActionType {
  using type = int32_t;
};
template <class Task>
struct ActionType<Task, std::void_t<typename Task::Action>> {
  using type = typename Task::Action;
};
template <class Task>
using ActionOf = typename ActionType<Task>::type;

// Row `row` of a batch of actions laid out as ActionSpec says ([N, elements]
// of 4-byte scalars), as the task's Step takes it.
template <class Task>
ActionOf<Task> ActionAt(const void* actions, int64_t row, int64_t elements) {
  using A = ActionOf<Task>;
  if constexpr (std::is_same_v<A, int32_t>) {
    return static_cast<const int32_t*>(actions)[row];
  } else if constexpr (std::is_same_v<A, const int32_t*>) {
    return static_cast<const int32_t*>(actions) + row * elements;
  } else {
    static_assert(std::is_same_v<A, const float*>,
                  "Task::Action must be int32_t, const int32_t* or const float*");
    return static_cast<const float*>(actions) + row * elements;
  }
}

// Whether a task's Action type can take actions of `kind`: int32_t takes
// Discrete, const int32_t* takes Discrete (one component) or MultiDiscrete
// (so a kwarg may switch a task between the two), const float* takes Box.
template <class Task>
constexpr bool TakesActions(ActionSpec::Kind kind) {
  using A = ActionOf<Task>;
  if constexpr (std::is_same_v<A, int32_t>) {
    return kind == ActionSpec::Kind::kDiscrete;
  } else if constexpr (std::is_same_v<A, const int32_t*>) {
    return kind == ActionSpec::Kind::kDiscrete || kind == ActionSpec::Kind::kMultiDiscrete;
  } else {
    return kind == ActionSpec::Kind::kBox;
  }
}

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
struct HasDraw : std::false_type {};
template <class Task>
struct HasDraw<Task, std::void_t<decltype(std::declval<const Task&>().Draw(
                         std::declval<const typename Task::State&>(), std::declval<Canvas&>())),
                     decltype(std::declval<const Task&>().Frame())>> : std::true_type {};

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

template <class Task, class = void>
struct HasMinChunkMethod : std::false_type {};
template <class Task>
struct HasMinChunkMethod<Task, std::void_t<decltype(std::declval<const Task&>().MinChunk())>>
    : std::true_type {};

// The same for a configured task: its MinChunk() where the kwargs set the cost.
template <class Task>
int64_t MinChunk(const Task& task) {
  if constexpr (HasMinChunkMethod<Task>::value) {
    return task.MinChunk();
  } else {
    return MinChunk<Task>();
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
