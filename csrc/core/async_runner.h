// AsyncRunner: EnvPool-style asynchronous stepping (batch_size < num_envs).
//
// Data flow:
//   Send(actions, env_ids) -> each env's action row is copied to its slot of
//   the action table, its id goes into a FIFO -> worker threads step
//   one env each into its staging row (row env of the pool's live buffers) ->
//   the worker that *finishes* claims the next result row and copies the env's
//   results there -> Recv() returns the next full batch of batch_size rows.
// Rows are claimed at completion, so a slow env never holds back a batch:
// Recv returns whichever batch_size envs finished first, with their env ids.
//
// Result rows live in a ring of K = ceil(num_envs / batch_size) + 2 batches.
// An env can be in flight only once (Send rejects it otherwise), so at most
// num_envs results exist beyond the batches already received, and a batch
// returned by Recv is not rewritten before the next Recv returns.
//
// Thread-safety: Send, Recv and InFlight are called under the pool's mutex
// (one caller at a time); workers never take that mutex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/buffers.h"
#include "core/errors.h"
#include "core/spec.h"

namespace pyenvpool {

class AsyncRunner {
 public:
  // Steps env `env` with the action row at `action`, writing its results into
  // row `env` of the staging targets.
  using StepFn = void (*)(void* ctx, int64_t env, const void* action);

  AsyncRunner(int num_threads, int64_t num_envs, int64_t batch_size,
              const std::vector<FieldSpec>& fields, int64_t action_bytes,
              const BatchArrays& staging, StepFn fn, void* ctx)
      : num_envs_(num_envs),
        batch_size_(batch_size),
        num_slots_((num_envs + batch_size - 1) / batch_size + 2),
        action_bytes_(action_bytes),
        staging_(staging.targets()),
        fn_(fn),
        ctx_(ctx),
        actions_(num_envs * action_bytes),
        queue_(num_envs),
        in_flight_(num_envs, 0),
        done_(num_slots_) {
    for (const auto& f : fields) row_bytes_.push_back(f.RowBytes());
    for (int64_t s = 0; s < num_slots_; ++s) {
      slots_.emplace_back(fields, batch_size, /*with_episode_outputs=*/true);
      slot_targets_.push_back(slots_.back().targets());
      env_ids_.push_back(std::make_shared<Buffer>(batch_size * 4));
    }
    for (int i = 0; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }

  ~AsyncRunner() { Stop(); }

  int64_t batch_size() const { return batch_size_; }
  int64_t num_slots() const { return num_slots_; }
  const BatchArrays& slot(int64_t s) const { return slots_[s]; }
  const BufferPtr& env_ids(int64_t s) const { return env_ids_[s]; }
  bool InFlight(int64_t env) const { return in_flight_[env] != 0; }
  int64_t in_flight_count() const { return in_flight_count_; }

  // Checks everything first, then queues all k envs; `actions` holds k rows of
  // action_bytes each. An env's row stays untouched until its result is
  // received (it cannot be sent again before), so workers read it unlocked.
  void Send(const void* actions, const int64_t* env_ids, int64_t k) {
    for (int64_t j = 0; j < k; ++j) {
      if (in_flight_[env_ids[j]]) {
        throw ValueError("env " + std::to_string(env_ids[j]) +
                         " is already in flight; recv() its result before sending it again");
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int64_t j = 0; j < k; ++j) {
        in_flight_[env_ids[j]] = 1;
        std::memcpy(&actions_[env_ids[j] * action_bytes_],
                    static_cast<const uint8_t*>(actions) + j * action_bytes_, action_bytes_);
        queue_[tail_ % num_envs_] = env_ids[j];
        ++tail_;
      }
      in_flight_count_ += k;
    }
    work_cv_.notify_all();
  }

  // Blocks until the next batch is complete; returns its ring slot.
  int64_t Recv() {
    if (in_flight_count_ < batch_size_) {
      throw ValueError("recv() needs batch_size=" + std::to_string(batch_size_) +
                       " envs in flight but only " + std::to_string(in_flight_count_) +
                       " are; send() more first");
    }
    const int64_t s = next_batch_ % num_slots_;
    std::atomic<int64_t>& done = done_[s].count;
    for (int spin = 0; spin < 2000 && done.load(std::memory_order_acquire) < batch_size_; ++spin) {
      std::this_thread::yield();
    }
    if (done.load(std::memory_order_acquire) < batch_size_) {
      std::unique_lock<std::mutex> lock(mu_);
      ready_cv_.wait(lock, [&] { return done.load(std::memory_order_acquire) >= batch_size_; });
    }
    done.store(0, std::memory_order_relaxed);
    const int32_t* ids = reinterpret_cast<const int32_t*>(env_ids_[s]->data());
    for (int64_t r = 0; r < batch_size_; ++r) in_flight_[ids[r]] = 0;
    in_flight_count_ -= batch_size_;
    ++next_batch_;
    return s;
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    workers_.clear();
  }

 private:
  struct alignas(64) Counter {
    std::atomic<int64_t> count{0};
  };

  void WorkerLoop() {
    while (true) {
      int64_t env;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || head_ != tail_; });
        if (stop_) return;
        env = queue_[head_ % num_envs_];
        ++head_;
      }
      fn_(ctx_, env, &actions_[env * action_bytes_]);
      const int64_t row = next_row_.fetch_add(1, std::memory_order_acq_rel);
      const int64_t s = (row / batch_size_) % num_slots_;
      CopyResult(env, slot_targets_[s], row % batch_size_);
      reinterpret_cast<int32_t*>(env_ids_[s]->data())[row % batch_size_] =
          static_cast<int32_t>(env);
      if (done_[s].count.fetch_add(1, std::memory_order_acq_rel) + 1 == batch_size_) {
        std::lock_guard<std::mutex> lock(mu_);
        ready_cv_.notify_all();
      }
    }
  }

  void CopyResult(int64_t env, const Targets& dst, int64_t r) const {
    const bool finished = staging_.terminated[env] || staging_.truncated[env];
    for (size_t f = 0; f < row_bytes_.size(); ++f) {
      std::memcpy(dst.obs[f] + r * row_bytes_[f], staging_.obs[f] + env * row_bytes_[f],
                  row_bytes_[f]);
      if (finished) {
        std::memcpy(dst.final_obs[f] + r * row_bytes_[f],
                    staging_.final_obs[f] + env * row_bytes_[f], row_bytes_[f]);
      }
    }
    dst.reward[r] = staging_.reward[env];
    dst.terminated[r] = staging_.terminated[env];
    dst.truncated[r] = staging_.truncated[env];
    dst.episode_return[r] = staging_.episode_return[env];
    dst.episode_length[r] = staging_.episode_length[env];
  }

  const int64_t num_envs_;
  const int64_t batch_size_;
  const int64_t num_slots_;
  const int64_t action_bytes_;
  std::vector<int64_t> row_bytes_;
  Targets staging_;
  StepFn fn_;
  void* ctx_;

  std::vector<BatchArrays> slots_;
  std::vector<Targets> slot_targets_;
  std::vector<BufferPtr> env_ids_;

  // Guarded by mu_ (the queue and stop flag); in_flight_ is touched only by
  // the caller of Send/Recv.
  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<uint8_t> actions_;  // row env: the action env was last sent with
  std::vector<int64_t> queue_;    // env ids
  int64_t head_ = 0, tail_ = 0;
  bool stop_ = false;
  std::vector<uint8_t> in_flight_;
  int64_t in_flight_count_ = 0;

  std::atomic<int64_t> next_row_{0};
  int64_t next_batch_ = 0;
  std::vector<Counter> done_;
  std::vector<std::thread> workers_;
};

}  // namespace pyenvpool
