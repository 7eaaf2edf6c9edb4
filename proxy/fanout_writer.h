// Fork-join socket writes for a job's fan-out.
//
// One clean job goes to thousands of sessions; the cost is the kernel's TCP
// send path (on loopback, the receiver's side too), about 8 µs per socket on
// one core. The loop stages every session's bytes, then calls run(): helper
// threads and the loop itself each take slices of the batch and try every
// socket once with a non-blocking sendmsg. The loop waits (nothing else
// touches those sockets meanwhile: it still owns them) and afterwards deals
// with each result itself — partial writes are queued through libuv, errors
// close the session. Helpers never see a session, only fds and iovecs.
//
// No mutex: a generation counter starts the helpers, a countdown ends the
// join, both with C++20 atomic wait/notify (futexes on Linux).

#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <thread>
#include <vector>

namespace hashgate {

class FanoutWriter {
 public:
  struct Item {
    int fd = -1;
    uint32_t first = 0;   // index of the first iovec
    uint32_t count = 0;   // iovecs
    int64_t result = 0;   // after run(): bytes written (0 on EAGAIN), or -errno
  };

  // `helpers` threads besides the caller's; 0 writes everything on the caller.
  explicit FanoutWriter(unsigned helpers);
  ~FanoutWriter();
  FanoutWriter(const FanoutWriter&) = delete;
  FanoutWriter& operator=(const FanoutWriter&) = delete;

  unsigned helpers() const { return unsigned(threads_.size()); }

  // Tries every item once; returns when all are done. Batches smaller than
  // `min_parallel` are written on the caller alone (waking a thread costs
  // more than a few sends).
  void run(std::span<Item> items, std::span<iovec> iovs, size_t min_parallel);

  // For the tests: batches that used the helpers; items written by the
  // helpers and by the caller (together, every item of every batch exactly
  // once); and how many times a helper took part in a batch (each helper
  // takes part in each parallel batch once, even with nothing left to claim).
  uint64_t parallel_runs() const { return parallel_runs_; }
  uint64_t items_by_helpers() const { return by_helpers_.load(std::memory_order_relaxed); }
  uint64_t items_by_caller() const { return by_caller_; }
  uint64_t helper_passes() const { return helper_passes_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kSlice = 32;  // items claimed at a time
  void helper_main();
  size_t work();  // claims slices until none are left; returns items written

  std::vector<std::thread> threads_;
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> running_{0};
  std::atomic<size_t> next_{0};
  std::atomic<uint64_t> by_helpers_{0};
  std::atomic<uint64_t> helper_passes_{0};
  uint64_t by_caller_ = 0;
  bool stop_ = false;  // written before the last generation bump
  Item* items_ = nullptr;
  size_t size_ = 0;
  iovec* iovs_ = nullptr;
  uint64_t parallel_runs_ = 0;
};

}  // namespace hashgate
