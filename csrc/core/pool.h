// Pool: N copies of one task, stepped in parallel, with same-step auto-reset
// and a snapshot store.
//
// Data flow of a live step:
//   actions (validated by the bindings: [N, elements] int32 or float32, see
//   ActionSpec) -> ThreadPool splits [0, N) into contiguous chunks -> each
//   env: Task::Step on its slot, write reward and flags; if the episode ended,
//   write its last observation to final_obs and its totals to
//   episode_return/length, then Task::Reset -> Task::WriteObs into row i of
//   the observation buffers.
//
// Auto-reset (Autoreset below) is same-step by default: the row already
// holds the next episode's first observation. kDisabled keeps a finished env
// in its final state instead: its row shows the last observation, further
// steps leave it unchanged (reward 0, the same flags, like a finished
// simulated state), and reset(env_ids) starts its next episode. kNextStep
// (Gymnasium's NEXT_STEP, EnvPool's behaviour) also keeps the final state
// for one step, then the env's next step ignores its action and starts the
// next episode: reward 0, flags false, the new episode's first observation.
//
// PoolBase is the type-erased face the bindings talk to: one virtual call per
// batch. Pool<Task> holds the loops, so inside a batch every call to the task
// is static and inlinable.
//
// Invariants:
// - Every check that can fail runs before any state changes (see errors.h).
// - With same-step auto-reset a live slot is never terminal: an env that ends
//   is reset in the same step. In the other modes ended_[i] records how env
//   i's episode ended until it restarts.
// - Env i's future depends only on its own slot (task state with its RNG and
//   counters, episode totals), never on the thread count or on other envs.
// - Calls are not re-entrant; the bindings serialise them with `mutex()`.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/async_runner.h"
#include "core/buffers.h"
#include "core/errors.h"
#include "core/rng.h"
#include "core/snapshot_store.h"
#include "core/state_codec.h"
#include "core/spec.h"
#include "core/task.h"
#include "core/thread_pool.h"

namespace pyenvpool {

// How a live env that ends starts its next episode (see the top of this file).
enum class Autoreset : uint8_t { kSameStep, kNextStep, kDisabled };

// Instance arrays for reset(instances=...): one pointer per instance field,
// k rows each, dtype and shape already checked against the task's spec.
struct InstanceArrays {
  std::vector<const uint8_t*> fields;
  std::vector<int64_t> row_bytes;
};

class PoolBase {
 public:
  // batch_size < num_envs makes the pool asynchronous: its num_threads
  // workers serve Send/Recv, and every other call runs on the caller's thread.
  PoolBase(std::string task_id, std::string config, TaskSpec spec, int64_t num_envs,
           int num_threads, int64_t batch_size, Autoreset autoreset)
      : task_id_(std::move(task_id)),
        config_(std::move(config)),
        spec_(std::move(spec)),
        num_envs_(num_envs),
        num_threads_(num_threads),
        batch_size_(batch_size),
        autoreset_(autoreset),
        ended_(num_envs, 0),
        threads_(batch_size < num_envs ? 1 : num_threads),
        live_(spec_.obs_fields, num_envs, /*with_episode_outputs=*/true),
        live_targets_(live_.targets()),
        sim_(spec_.obs_fields, 0, /*with_episode_outputs=*/false) {
    for (const auto& f : spec_.obs_fields) row_bytes_.push_back(f.RowBytes());
  }
  virtual ~PoolBase() = default;

  const std::string& task_id() const { return task_id_; }
  // Every task parameter, defaults included ("key=value;..."), see Kwargs::Resolved.
  const std::string& config() const { return config_; }
  const TaskSpec& spec() const { return spec_; }
  int64_t num_envs() const { return num_envs_; }
  int num_threads() const { return num_threads_; }
  int64_t batch_size() const { return batch_size_; }
  // True for same-step auto-reset (the default).
  bool autoreset() const { return autoreset_ == Autoreset::kSameStep; }
  Autoreset autoreset_mode() const { return autoreset_; }
  bool is_async() const { return async_ != nullptr; }
  AsyncRunner* async() { return async_.get(); }
  const BatchArrays& live() const { return live_; }
  // Raw pointers into `live()`, built once: the live buffers never move.
  const Targets& live_targets() const { return live_targets_; }
  const BatchArrays& sim() const { return sim_; }
  std::mutex& mutex() { return mutex_; }

  bool closed() const { return closed_; }
  void Close() {
    closed_ = true;
    if (async_) async_->Stop();
    threads_.Stop();
  }

  // In an asynchronous pool an env that was sent and not yet received belongs
  // to the workers; calls that touch its state must wait for recv().
  void CheckNotInFlight(const int64_t* env_ids, int64_t k) const {
    if (!async_) return;
    for (int64_t j = 0; j < k; ++j) {
      if (async_->InFlight(env_ids[j])) {
        throw ValueError("env " + std::to_string(env_ids[j]) +
                         " is in flight (sent, not yet received); recv() it first");
      }
    }
  }

  // Live envs. `actions`: num_envs rows of the task's action (see ActionSpec),
  // already checked.
  virtual void Step(const void* actions, const Targets& out) = 0;
  // Resets env_ids[0..k). seeds: k seeds (env gets stream (seeds[j], env_id))
  // or null to continue each env's stream. instances: null or k rows to load.
  virtual void Reset(const int64_t* env_ids, int64_t k, const uint64_t* seeds,
                     const InstanceArrays* instances) = 0;

  // Snapshots. Ids must be checked live by the caller via CheckStateIds.
  virtual void Snapshot(const int64_t* env_ids, int64_t k, int64_t* ids_out) = 0;
  virtual void Restore(const int64_t* ids, const int64_t* env_ids, int64_t k) = 0;
  // Steps copies of `ids` with k checked action rows; writes k rows of the
  // sim arrays (grown as needed).
  virtual void Simulate(const int64_t* ids, const void* actions, int64_t k,
                        int64_t* new_ids) = 0;
  virtual void Release(const int64_t* ids, int64_t k, bool missing_ok) = 0;
  virtual void CheckStateIds(const int64_t* ids, int64_t k) const = 0;
  virtual int64_t snapshot_count() const = 0;
  virtual int64_t max_snapshots() const = 0;
  virtual int64_t snapshot_bytes() const = 0;  // bytes held by live snapshots
  virtual int64_t state_bytes() const = 0;     // bytes per snapshot record

  virtual std::string Render(int64_t env_id) const = 0;
  // Rgb frames: {0, 0} when the task does not draw.
  virtual FrameSize Frame() const = 0;
  // Draws envs env_ids[0..k) into k consecutive frames of height x width x 3
  // bytes at `out`, in parallel on the pool's threads.
  virtual void RenderFrames(const int64_t* env_ids, int64_t k, uint8_t* out) const = 0;

  // Serialised snapshots (see state_codec.h): bytes that import_states turns
  // back into state ids in a pool of the same task and configuration.
  virtual std::string ExportStates(const int64_t* ids, int64_t k) const = 0;
  virtual std::vector<int64_t> ImportStates(const std::string& blob) = 0;

 protected:
  // Makes the sim arrays hold at least k rows. Old arrays stay alive as long
  // as Python views of them exist; they are simply no longer written.
  void EnsureSimRows(int64_t k) {
    if (k <= sim_.rows) return;
    int64_t rows = sim_.rows < 64 ? 64 : sim_.rows;
    while (rows < k) rows *= 2;
    sim_ = BatchArrays(spec_.obs_fields, rows, false);
  }

  std::string task_id_;
  std::string config_;
  TaskSpec spec_;
  int64_t num_envs_;
  int num_threads_;
  int64_t batch_size_;
  Autoreset autoreset_;
  // kNextStep, kDisabled: per env, 0 while its episode runs, else the flags
  // it ended with (bit 0 terminated, bit 1 truncated) until it restarts.
  std::vector<uint8_t> ended_;
  std::vector<int64_t> row_bytes_;
  mutable ThreadPool threads_;  // mutable: const checks may run in parallel too
  BatchArrays live_;
  Targets live_targets_;
  BatchArrays sim_;
  std::mutex mutex_;
  bool closed_ = false;
  std::unique_ptr<AsyncRunner> async_;  // declared last: stopped before the rest goes
};

template <class Task>
class Pool final : public PoolBase {
 public:
  using State = typename Task::State;
  static_assert(std::is_trivially_copyable_v<State>,
                "a task State must be trivially copyable: a snapshot is a plain copy");

  // Everything that determines an env's future.
  struct Slot {
    State state;
    double episode_return = 0.0;
    int32_t episode_length = 0;
  };

  Pool(Task task, std::string config, int64_t num_envs, int num_threads, uint64_t seed,
       int64_t max_snapshots, int64_t batch_size, Autoreset autoreset)
      : PoolBase(Task::kId, std::move(config), task.Spec(), num_envs, num_threads, batch_size,
                 autoreset),
        task_(std::move(task)),
        action_elements_(spec_.action.NumElements()),
        slots_(num_envs),
        store_(max_snapshots) {
    if (!TakesActions<Task>(spec_.action.kind)) {
      throw std::logic_error(std::string(Task::kId) +
                             ": Spec().action does not match the type Step takes its action as");
    }
    // Zero every byte, padding included, so exported states are deterministic.
    std::memset(static_cast<void*>(slots_.data()), 0, sizeof(Slot) * slots_.size());
    const Targets& out = live_targets_;
    threads_.ParallelFor(num_envs_, MinChunk(task_), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        slots_[i].state.rng.Seed(seed, static_cast<uint64_t>(i));
        task_.Reset(slots_[i].state);
        task_.WriteObs(slots_[i].state, ObsRow{out.obs.data(), row_bytes_.data(), i});
      }
    });
    if (batch_size < num_envs) {
      staging_ = live_targets_;
      async_ = std::make_unique<AsyncRunner>(num_threads, num_envs, batch_size, spec_.obs_fields,
                                             spec_.action.NumElements() * 4, live_,
                                             &Pool::AsyncStep, this);
    }
  }

  ~Pool() override {
    if (async_) async_->Stop();
    threads_.Stop();
  }

  void Step(const void* actions, const Targets& out) override {
    switch (autoreset_) {
      case Autoreset::kSameStep: return StepAll<Autoreset::kSameStep>(actions, out);
      case Autoreset::kNextStep: return StepAll<Autoreset::kNextStep>(actions, out);
      case Autoreset::kDisabled: return StepAll<Autoreset::kDisabled>(actions, out);
    }
  }

  void Reset(const int64_t* env_ids, int64_t k, const uint64_t* seeds,
             const InstanceArrays* instances) override {
    const Targets& out = live_targets_;
    if (instances != nullptr) {
      // Serial and two-phase: load every instance into a scratch state first,
      // so a bad row raises before any env changes.
      std::vector<State> loaded(k);
      for (int64_t j = 0; j < k; ++j) {
        loaded[j] = slots_[env_ids[j]].state;
        if (seeds != nullptr) loaded[j].rng.Seed(seeds[j], static_cast<uint64_t>(env_ids[j]));
        try {
          LoadTaskInstance(task_, loaded[j],
                           InstanceRow{instances->fields.data(), instances->row_bytes.data(), j});
        } catch (const ValueError& e) {
          throw ValueError("instances row " + std::to_string(j) + ": " + e.what());
        }
      }
      for (int64_t j = 0; j < k; ++j) {
        Slot& s = slots_[env_ids[j]];
        s = Slot{loaded[j], 0.0, 0};
        ended_[env_ids[j]] = 0;
        task_.WriteObs(s.state, ObsRow{out.obs.data(), row_bytes_.data(), env_ids[j]});
      }
      return;
    }
    threads_.ParallelFor(k, MinChunk(task_), [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        Slot& s = slots_[env_ids[j]];
        if (seeds != nullptr) s.state.rng.Seed(seeds[j], static_cast<uint64_t>(env_ids[j]));
        StartEpisode(s);
        ended_[env_ids[j]] = 0;
        task_.WriteObs(s.state, ObsRow{out.obs.data(), row_bytes_.data(), env_ids[j]});
      }
    });
  }

  void Snapshot(const int64_t* env_ids, int64_t k, int64_t* ids_out) override {
    store_.CheckCapacity(k);
    store_.Allocate(k, ids_out);
    for (int64_t j = 0; j < k; ++j) {
      auto& r = store_.Get(ids_out[j]);
      r.slot = slots_[env_ids[j]];
      r.terminated = (ended_[env_ids[j]] & 1) != 0;  // always 0 with auto-reset
      r.truncated = (ended_[env_ids[j]] & 2) != 0;
    }
  }

  void Restore(const int64_t* ids, const int64_t* env_ids, int64_t k) override {
    for (int64_t j = 0; j < k; ++j) {
      const auto& r = store_.Get(ids[j]);
      if (autoreset_ == Autoreset::kSameStep && (r.terminated || r.truncated)) {
        throw ValueError("state id " + std::to_string(ids[j]) +
                         " holds a finished episode; only unfinished states can be restored "
                         "into the live envs of an auto-resetting pool");
      }
    }
    const Targets& out = live_targets_;
    for (int64_t j = 0; j < k; ++j) {
      const auto& r = store_.Get(ids[j]);
      slots_[env_ids[j]] = r.slot;
      ended_[env_ids[j]] = static_cast<uint8_t>((r.terminated ? 1 : 0) | (r.truncated ? 2 : 0));
      task_.WriteObs(slots_[env_ids[j]].state,
                     ObsRow{out.obs.data(), row_bytes_.data(), env_ids[j]});
    }
  }

  void Simulate(const int64_t* ids, const void* actions, int64_t k,
                int64_t* new_ids) override {
    store_.CheckCapacity(k);
    EnsureSimRows(k);
    slot_scratch_.resize(k);
    store_.Take(k, slot_scratch_.data());
    // No allocation past this point: record references stay valid.
    Targets out = sim_.targets();
    threads_.ParallelFor(k, MinChunk(task_), [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        new_ids[j] = store_.Activate(slot_scratch_[j]);
        const auto& src = store_.Get(ids[j]);
        auto& dst = store_.Get(new_ids[j]);
        dst.slot = src.slot;
        if (src.terminated || src.truncated) {  // absorbing
          dst.terminated = src.terminated;
          dst.truncated = src.truncated;
          out.reward[j] = 0.0f;
        } else {
          const StepResult r =
              task_.Step(dst.slot.state, ActionAt<Task>(actions, j, action_elements_));
          dst.slot.episode_return += r.reward;
          dst.slot.episode_length += 1;
          dst.terminated = r.terminated;
          dst.truncated = r.truncated;
          out.reward[j] = r.reward;
        }
        out.terminated[j] = dst.terminated;
        out.truncated[j] = dst.truncated;
        task_.WriteObs(dst.slot.state, ObsRow{out.obs.data(), row_bytes_.data(), j});
      }
    });
  }

  void Release(const int64_t* ids, int64_t k, bool missing_ok) override {
    if (!missing_ok) CheckStateIds(ids, k);
    for (int64_t j = 0; j < k; ++j) {
      if (store_.IsLive(ids[j])) store_.Release(ids[j]);  // duplicates release once
    }
  }

  void CheckStateIds(const int64_t* ids, int64_t k) const override {
    std::atomic<bool> all_live{true};
    threads_.ParallelFor(k, kCheckChunk, [&](int64_t begin, int64_t end) {
      bool ok = true;
      for (int64_t j = begin; j < end; ++j) ok &= store_.IsLive(ids[j]);
      if (!ok) all_live.store(false, std::memory_order_relaxed);
    });
    if (all_live.load()) return;
    for (int64_t j = 0; j < k; ++j) store_.CheckLive(ids[j]);  // throws naming the first bad id
  }

  int64_t snapshot_count() const override { return store_.count(); }
  int64_t max_snapshots() const override { return store_.max_snapshots(); }
  int64_t snapshot_bytes() const override { return store_.bytes_in_use(); }
  int64_t state_bytes() const override { return store_.record_bytes(); }

  std::string Render(int64_t env_id) const override {
    return RenderTaskState(task_, slots_[env_id].state);
  }

  FrameSize Frame() const override {
    if constexpr (HasDraw<Task>::value) {
      return task_.Frame();
    } else {
      return {};
    }
  }

  void RenderFrames(const int64_t* env_ids, int64_t k, uint8_t* out) const override {
    if constexpr (HasDraw<Task>::value) {
      const FrameSize size = task_.Frame();
      const int64_t frame_bytes = int64_t{size.height} * size.width * 3;
      threads_.ParallelFor(k, 1, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
          Canvas canvas(out + j * frame_bytes, size.height, size.width);
          task_.Draw(slots_[env_ids[j]].state, canvas);
        }
      });
    } else {
      (void)env_ids, (void)k, (void)out;
      throw ValueError(std::string(Task::kId) + " has no rgb_array rendering");
    }
  }

  std::string ExportStates(const int64_t* ids, int64_t k) const override {
    StateCodec codec(task_id_, config_, sizeof(Record));
    std::string blob = codec.Header(k);
    for (int64_t j = 0; j < k; ++j) {
      blob.append(reinterpret_cast<const char*>(&store_.Get(ids[j])), sizeof(Record));
    }
    codec.Seal(blob);
    return blob;
  }

  std::vector<int64_t> ImportStates(const std::string& blob) override {
    StateCodec codec(task_id_, config_, sizeof(Record));
    const auto [payload, k] = codec.Open(blob);  // throws ValueError on any mismatch
    std::vector<Record> records(k);
    for (int64_t j = 0; j < k; ++j) {
      std::memcpy(static_cast<void*>(&records[j]), payload + j * sizeof(Record), sizeof(Record));
      if constexpr (HasStateCheck<Task>::value) {
        const std::string error = task_.CheckState(records[j].slot.state);
        if (!error.empty()) {
          throw ValueError("state " + std::to_string(j) + " is not a valid " + task_id_ +
                           " state: " + error);
        }
      }
    }
    store_.CheckCapacity(k);
    std::vector<int64_t> ids(k);
    store_.Allocate(k, ids.data());
    for (int64_t j = 0; j < k; ++j) store_.Get(ids[j]) = records[j];
    return ids;
  }

 private:
  // Async workers step one env into its row of the live (staging) buffers;
  // `action` is that env's row of actions.
  static void AsyncStep(void* ctx, int64_t env, const void* action) {
    auto* self = static_cast<Pool*>(ctx);
    const auto a = ActionAt<Task>(action, 0, self->action_elements_);
    switch (self->autoreset_) {
      case Autoreset::kSameStep:
        return self->template StepLive<Autoreset::kSameStep>(env, a, self->staging_);
      case Autoreset::kNextStep:
        return self->template StepLive<Autoreset::kNextStep>(env, a, self->staging_);
      case Autoreset::kDisabled:
        return self->template StepLive<Autoreset::kDisabled>(env, a, self->staging_);
    }
  }

  // The auto-reset choice is a template argument so the common loop carries
  // no per-env branch for it.
  template <Autoreset kMode>
  void StepAll(const void* actions, const Targets& out) {
    threads_.ParallelFor(num_envs_, MinChunk(task_), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        StepLive<kMode>(i, ActionAt<Task>(actions, i, action_elements_), out);
      }
    });
  }

  // A new episode in slot `s`: the task's start state from its stream, zero totals.
  void StartEpisode(Slot& s) {
    task_.Reset(s.state);
    s.episode_return = 0.0;
    s.episode_length = 0;
  }

  template <Autoreset kMode>
  void StepLive(int64_t i, ActionOf<Task> action, const Targets& out) {
    Slot& s = slots_[i];
    if (kMode == Autoreset::kNextStep && ended_[i] != 0) {  // restarts, ignoring `action`
      StartEpisode(s);
      ended_[i] = 0;
      out.reward[i] = 0.0f;
      out.terminated[i] = false;
      out.truncated[i] = false;
      out.episode_return[i] = 0.0;
      out.episode_length[i] = 0;
      task_.WriteObs(s.state, ObsRow{out.obs.data(), row_bytes_.data(), i});
      return;
    }
    if (kMode == Autoreset::kDisabled && ended_[i] != 0) {  // finished, not yet reset: absorbing
      out.reward[i] = 0.0f;
      out.terminated[i] = (ended_[i] & 1) != 0;
      out.truncated[i] = (ended_[i] & 2) != 0;
      out.episode_return[i] = 0.0;
      out.episode_length[i] = 0;
      task_.WriteObs(s.state, ObsRow{out.obs.data(), row_bytes_.data(), i});
      return;
    }
    const StepResult r = task_.Step(s.state, action);
    s.episode_return += r.reward;
    s.episode_length += 1;
    out.reward[i] = r.reward;
    out.terminated[i] = r.terminated;
    out.truncated[i] = r.truncated;
    if (r.terminated || r.truncated) {
      task_.WriteObs(s.state, ObsRow{out.final_obs.data(), row_bytes_.data(), i});
      out.episode_return[i] = s.episode_return;
      out.episode_length[i] = s.episode_length;
      if (kMode == Autoreset::kSameStep) {
        StartEpisode(s);
      } else {
        ended_[i] = static_cast<uint8_t>((r.terminated ? 1 : 0) | (r.truncated ? 2 : 0));
      }
    } else {
      out.episode_return[i] = 0.0;
      out.episode_length[i] = 0;
    }
    task_.WriteObs(s.state, ObsRow{out.obs.data(), row_bytes_.data(), i});
  }

  using Record = typename SnapshotStore<Slot>::Record;
  static constexpr int64_t kCheckChunk = 4096;  // id checks are ~2 ns each

  Task task_;
  int64_t action_elements_;  // 4-byte scalars per action row
  std::vector<Slot> slots_;
  SnapshotStore<Slot> store_;
  std::vector<uint32_t> slot_scratch_;  // Simulate's new slots, reused across calls
  Targets staging_;
};

}  // namespace pyenvpool
