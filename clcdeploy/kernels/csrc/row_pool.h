// A persistent pool of helper threads that share a range of output rows with the calling thread.
//
// Rows are claimed one at a time from an atomic counter, so the caller finishes whatever the helpers have not
// claimed. Why not a static split: inside LiteRT the fused kernel runs between XNNPACK partitions whose own
// worker threads keep spinning for a while after each partition, so on a machine with as many cores as
// threads a helper may get its core late; with a static split the caller then waits for the helper's whole
// share (measured: 2 threads slower than 1). With dynamic claiming it waits for at most the row in flight.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace clcdeploy {

class RowPool {
 public:
  using RowFn = void (*)(const void* context, int64_t row_begin, int64_t row_end);

  explicit RowPool(int helpers) {
    for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { help(); });
  }

  ~RowPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  RowPool(const RowPool&) = delete;
  RowPool& operator=(const RowPool&) = delete;

  // Runs fn(context, r, r + 1) for every row r in [0, rows), on the calling thread and the helpers; returns
  // when all rows are done. A call made while another is running (one delegate shared by interpreters on
  // several threads) runs on its calling thread alone.
  void run(int64_t rows, RowFn fn, const void* context) {
    const Job job{rows, fn, context};
    std::unique_lock<std::mutex> running(running_, std::try_to_lock);
    if (threads_.empty() || rows < 2 || !running.owns_lock()) {
      fn(context, 0, rows);
      return;
    }
    next_row_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      ++generation_;
    }
    wake_.notify_all();
    work_on(job);
    {
      std::lock_guard<std::mutex> lock(mutex_);  // from here on no helper joins this job
      job_ = nullptr;
    }
    while (busy_.load(std::memory_order_acquire) != 0) std::this_thread::yield();  // the rows still in flight
  }

 private:
  struct Job {
    int64_t rows;
    RowFn fn;
    const void* context;
  };

  void work_on(const Job& job) {
    for (int64_t row = next_row_.fetch_add(1); row < job.rows; row = next_row_.fetch_add(1)) {
      job.fn(job.context, row, row + 1);
    }
  }

  void help() {
    uint64_t seen = 0;
    for (;;) {
      const Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || (job_ != nullptr && generation_ != seen); });
        if (stopping_) return;
        seen = generation_;
        job = job_;
        busy_.fetch_add(1, std::memory_order_relaxed);  // under the mutex, so run() sees it before it returns
      }
      work_on(*job);
      busy_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex running_;  // held by the call using the helpers
  std::mutex mutex_;
  std::condition_variable wake_;
  const Job* job_ = nullptr;  // guarded by mutex_
  uint64_t generation_ = 0;   // guarded by mutex_
  bool stopping_ = false;     // guarded by mutex_
  std::atomic<int64_t> next_row_{0};
  std::atomic<int> busy_{0};
};

}  // namespace clcdeploy
