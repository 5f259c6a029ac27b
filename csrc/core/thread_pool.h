// ThreadPool: a persistent set of workers that run one batch at a time.
//
// ParallelFor(n, min_chunk, f) splits [0, n) into contiguous pieces of at
// least `min_chunk` (the last may be shorter) and calls f(begin, end) once per
// piece. The calling thread takes part, so a pool of T threads owns T - 1
// workers. A batch too small for two pieces runs inline on the caller and
// never touches a worker.
//
// Pieces are claimed, not assigned (guided scheduling): the caller offers the
// batch to up to T - 1 workers, and the caller and every worker that takes the
// offer claim pieces of 1 / (2T) of what is left, never less than min_chunk,
// until nothing is. So a thread that starts late or is preempted (the machine
// may be shared), or envs that cost more (MuJoCo steps with more contacts),
// leave their work to the others, and the pieces shrink toward the end, where
// threads would otherwise wait for each other. When the caller runs out of
// work it withdraws every offer not yet taken, and waits only for the workers
// that took one: a worker that never got the CPU never holds back a batch. Which thread runs which piece varies from batch to
// batch; callers' results never depend on it (each index is independent).
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
    const int64_t most = n / (min_chunk < 1 ? 1 : min_chunk);  // pieces of >= min_chunk
    if (std::min<int64_t>(num_threads_, most) <= 1 || stopped_ || Forked()) {
      fn(int64_t{0}, n);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    job_ctx_ = static_cast<void*>(&fn);
    job_fn_ = [](void* ctx, int64_t begin, int64_t end) { (*static_cast<Fn*>(ctx))(begin, end); };
    job_n_ = n;
    job_min_chunk_ = n / most;
    next_begin_.store(0, std::memory_order_relaxed);
    const int helpers = static_cast<int>(std::min<int64_t>(num_threads_, most)) - 1;
    {
      // Only the workers offered the batch are woken; the others never read the job.
      std::lock_guard<std::mutex> lock(mu_);
      for (int w = 1; w <= helpers; ++w) {
        slots_[w].offer.store(kOffered, std::memory_order_release);
        slots_[w].ticket.fetch_add(1, std::memory_order_release);
      }
    }
    cv_.notify_all();
    RunPieces();
    for (int w = 1; w <= helpers; ++w) {
      int offer = kOffered;
      if (slots_[w].offer.compare_exchange_strong(offer, kIdle, std::memory_order_acq_rel)) {
        continue;  // withdrawn before the worker took it: it will never read this job
      }
      while (slots_[w].offer.load(std::memory_order_acquire) != kIdle) PYENVPOOL_PAUSE();
    }
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

  // A worker's offer: kIdle -> kOffered (the caller, job written) -> kTaken
  // (the worker, before it reads the job) -> kIdle (the worker, done), or
  // kOffered -> kIdle (the caller withdraws it).
  static constexpr int kIdle = 0, kOffered = 1, kTaken = 2;

  struct alignas(64) Slot {
    std::atomic<uint64_t> ticket{0};
    std::atomic<int> offer{kIdle};
  };

  // Claims and runs pieces of the current job until none is left.
  void RunPieces() {
    const int64_t n = job_n_;
    int64_t begin = next_begin_.load(std::memory_order_relaxed);
    while (begin < n) {
      const int64_t size = std::max(job_min_chunk_, (n - begin) / (2 * int64_t{num_threads_}));
      const int64_t end = std::min(n, begin + size);
      if (next_begin_.compare_exchange_weak(begin, end, std::memory_order_relaxed)) {
        job_fn_(job_ctx_, begin, end);
        begin = next_begin_.load(std::memory_order_relaxed);
      }
    }
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
      int offer = kOffered;
      if (!slots_[index].offer.compare_exchange_strong(offer, kTaken,
                                                       std::memory_order_acq_rel)) {
        continue;  // withdrawn: the batch finished without this worker
      }
      RunPieces();
      slots_[index].offer.store(kIdle, std::memory_order_release);
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
  std::atomic<int64_t> next_begin_{0};  // where the current job's unclaimed part begins

  // The current job. Written by the caller before the offers (release) and
  // read by a worker only after it took an offer (acquire); rewritten only
  // after every offer was withdrawn or its worker had finished.
  void (*job_fn_)(void*, int64_t, int64_t) = nullptr;
  void* job_ctx_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_min_chunk_ = 1;  // >= min_chunk: [0, n) holds at least two such pieces
};

}  // namespace pyenvpool
