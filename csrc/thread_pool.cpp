// See thread_pool.h.
#include "thread_pool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace effgan {
namespace {

thread_local bool in_parallel = false;

struct Job {
  void (*fn)(void*, int64_t, int64_t) = nullptr;
  void* ctx = nullptr;
  int64_t begin = 0, end = 0, chunk = 1, n = 0;
  std::atomic<int64_t> next{0};
};

class Pool {
 public:
  void run(Job& job, int threads) {
    {
      std::lock_guard<std::mutex> lk(m_);
      grow(threads - 1);
      job_ = &job;
      slots_ = threads - 1;
      active_ = 0;
      ++generation_;
    }
    work_cv_.notify_all();
    work(job);
    std::unique_lock<std::mutex> lk(m_);
    // No worker may join from now on; wait for those that did to finish their chunks.
    job_ = nullptr;
    slots_ = 0;
    done_cv_.wait(lk, [&] { return active_ == 0; });
  }

 private:
  static void work(Job& job) {
    for (;;) {
      const int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= job.n) return;
      const int64_t b = job.begin + i * job.chunk;
      job.fn(job.ctx, b, std::min(job.end, b + job.chunk));
    }
  }

  void grow(int workers) {  // under m_
    while (static_cast<int>(workers_) < workers) {
      std::thread([this] { loop(); }).detach();
      ++workers_;
    }
  }

  void loop() {
    in_parallel = true;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      work_cv_.wait(lk, [&] { return generation_ != seen; });
      seen = generation_;
      if (job_ == nullptr || slots_ <= 0) continue;
      --slots_;
      ++active_;
      Job* job = job_;
      lk.unlock();
      work(*job);
      lk.lock();
      if (--active_ == 0) done_cv_.notify_all();
    }
  }

  std::mutex m_;
  std::condition_variable work_cv_, done_cv_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  int slots_ = 0;
  int active_ = 0;
  size_t workers_ = 0;
};

// One pool per process, never destroyed (its detached workers may outlive static destructors).
// A forked child does not inherit the parent's threads: it makes a pool of its own.
std::atomic<bool> busy{false};
Pool* pool = nullptr;
pid_t pool_pid = 0;

}  // namespace

void pool_run(int64_t begin, int64_t end, int64_t grain, int threads, void (*fn)(void*, int64_t, int64_t),
              void* ctx) {
  if (begin >= end) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t range = end - begin;
  const int64_t max_chunks = (range + grain - 1) / grain;
  threads = static_cast<int>(std::min<int64_t>(std::max(threads, 1), max_chunks));
  bool expected = false;
  if (threads <= 1 || in_parallel || !busy.compare_exchange_strong(expected, true)) {
    fn(ctx, begin, end);  // one thread, nested, or another thread's loop is running: inline
    return;
  }
  if (pool == nullptr || pool_pid != getpid()) {
    pool = new Pool();
    pool_pid = getpid();
  }
  // A few chunks per thread, so that a thread that starts late finds the others' share done.
  const int64_t n = std::min<int64_t>(max_chunks, 4 * static_cast<int64_t>(threads));
  Job job;
  job.fn = fn;
  job.ctx = ctx;
  job.begin = begin;
  job.end = end;
  job.chunk = (range + n - 1) / n;
  job.n = (range + job.chunk - 1) / job.chunk;
  in_parallel = true;
  pool->run(job, threads);
  in_parallel = false;
  busy.store(false, std::memory_order_release);
}

}  // namespace effgan
