// ThreadPool: a persistent set of workers that run one batch at a time.
//
// ParallelFor(n, min_chunk, f) splits [0, n) into at most num_threads
// contiguous chunks and calls f(begin, end) once per chunk. The calling thread
// runs chunk 0 itself, so a pool of T threads owns T - 1 workers. A batch too
// small for two chunks of `min_chunk` runs inline on the caller and never
// touches a worker.
//
// Workers spin briefly after each batch (back-to-back steps are the common
// case), then park on a condition variable. Stop() joins them; it is idempotent
// and runs from the destructor. After fork() the child has no workers, so a
// pool used in a forked child runs every batch inline and never joins.
#pragma once

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PYENVPOOL_PAUSE() _mm_pause()
#else
#define PYENVPOOL_PAUSE() std::this_thread::yield()
#endif

namespace pyenvpool {

// Bumped in the child after every fork(), so a pool can tell with one load
// (no getpid() system call per batch) that its workers do not exist here.
inline std::atomic<uint64_t>& ForkGeneration() {
  static std::atomic<uint64_t> generation{0};
  static const int registered = pthread_atfork(
      nullptr, nullptr, [] { ForkGeneration().fetch_add(1, std::memory_order_relaxed); });
  (void)registered;
  return generation;
}

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads)
      : num_threads_(num_threads < 1 ? 1 : num_threads), slots_(num_threads_) {
    owner_generation_ = ForkGeneration().load(std::memory_order_relaxed);
    for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  ~ThreadPool() { Stop(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  template <class F>
  void ParallelFor(int64_t n, int64_t min_chunk, F&& fn) {
    if (n <= 0) return;
    const int64_t chunks = std::min<int64_t>(num_threads_, n / (min_chunk < 1 ? 1 : min_chunk));
    if (chunks <= 1 || stopped_ || Forked()) {
      fn(int64_t{0}, n);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    job_ctx_ = static_cast<void*>(&fn);
    job_fn_ = [](void* ctx, int64_t begin, int64_t end) { (*static_cast<Fn*>(ctx))(begin, end); };
    job_n_ = n;
    job_chunks_ = static_cast<int>(chunks);
    remaining_.store(job_chunks_ - 1, std::memory_order_relaxed);
    {
      // Only the workers that get a chunk are woken; the others never read the job.
      std::lock_guard<std::mutex> lock(mu_);
      for (int w = 1; w < job_chunks_; ++w) slots_[w].ticket.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    RunChunk(0);
    while (remaining_.load(std::memory_order_acquire) != 0) PYENVPOOL_PAUSE();
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (Forked()) {
      // Forked child: the workers do not exist here. Leak the handles rather
      // than join threads that will never answer.
      for (auto& w : workers_) new std::thread(std::move(w));
      workers_.clear();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_flag_.store(true, std::memory_order_release);
      for (int w = 1; w < num_threads_; ++w) slots_[w].ticket.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

 private:
  bool Forked() const {
    return ForkGeneration().load(std::memory_order_relaxed) != owner_generation_;
  }

  struct alignas(64) Slot {
    std::atomic<uint64_t> ticket{0};
  };

  void RunChunk(int c) {
    const int64_t begin = job_n_ * c / job_chunks_;
    const int64_t end = job_n_ * (c + 1) / job_chunks_;
    job_fn_(job_ctx_, begin, end);
  }

  void WorkerLoop(int index) {
    std::atomic<uint64_t>& ticket = slots_[index].ticket;
    uint64_t seen = 0;
    while (true) {
      uint64_t now = ticket.load(std::memory_order_acquire);
      for (int spin = 0; now == seen && spin < kSpinIterations; ++spin) {
        PYENVPOOL_PAUSE();
        now = ticket.load(std::memory_order_acquire);
      }
      if (now == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return ticket.load(std::memory_order_acquire) != seen; });
        now = ticket.load(std::memory_order_acquire);
      }
      seen = now;
      if (stop_flag_.load(std::memory_order_acquire)) return;
      RunChunk(index);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  static constexpr int kSpinIterations = 4000;  // roughly 10-40 microseconds

  const int num_threads_;
  uint64_t owner_generation_;
  bool stopped_ = false;
  std::vector<std::thread> workers_;
  std::vector<Slot> slots_;  // slots_[w].ticket is bumped once per job given to worker w

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_flag_{false};
  std::atomic<int> remaining_{0};

  // The current job. Written by the caller before the tickets are bumped
  // (release) and read by a worker after it sees its ticket move (acquire);
  // rewritten only after every worker given a chunk has finished it.
  void (*job_fn_)(void*, int64_t, int64_t) = nullptr;
  void* job_ctx_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
};

}  // namespace pyenvpool
