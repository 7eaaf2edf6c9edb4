#include "proxy/fanout_writer.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace hashgate {

namespace {

// One non-blocking try; MSG_NOSIGNAL: a peer that went away is an error
// for the loop to handle, not a SIGPIPE.
int64_t send_once(const FanoutWriter::Item& it, iovec* iovs) {
  msghdr msg{};
  msg.msg_iov = iovs + it.first;
  msg.msg_iovlen = it.count;
  for (;;) {
    ssize_t n = ::sendmsg(it.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -int64_t(errno);
  }
}

}  // namespace

FanoutWriter::FanoutWriter(unsigned helpers) {
  threads_.reserve(helpers);
  for (unsigned i = 0; i < helpers; ++i) threads_.emplace_back([this] { helper_main(); });
}

FanoutWriter::~FanoutWriter() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& t : threads_) t.join();
}

size_t FanoutWriter::work() {
  size_t done = 0;
  for (;;) {
    size_t begin = next_.fetch_add(kSlice, std::memory_order_relaxed);
    if (begin >= size_) return done;
    size_t end = std::min(size_, begin + kSlice);
    for (size_t i = begin; i < end; ++i) items_[i].result = send_once(items_[i], iovs_);
    done += end - begin;
  }
}

void FanoutWriter::helper_main() {
  uint32_t seen = 0;  // the generation at construction: run() may bump it before this thread starts
  for (;;) {
    generation_.wait(seen, std::memory_order_acquire);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    by_helpers_.fetch_add(work(), std::memory_order_relaxed);
    helper_passes_.fetch_add(1, std::memory_order_relaxed);
    if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) running_.notify_one();
  }
}

void FanoutWriter::run(std::span<Item> items, std::span<iovec> iovs, size_t min_parallel) {
  items_ = items.data();
  size_ = items.size();
  iovs_ = iovs.data();
  next_.store(0, std::memory_order_relaxed);
  if (threads_.empty() || items.size() < min_parallel) {
    by_caller_ += work();
    return;
  }
  ++parallel_runs_;
  running_.store(uint32_t(threads_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);  // publishes items_, size_, iovs_
  generation_.notify_all();
  by_caller_ += work();
  // Every helper passes through this generation exactly once, even one that
  // wakes after the work is gone: it finds nothing to claim and counts down.
  for (uint32_t r = running_.load(std::memory_order_acquire); r != 0; r = running_.load(std::memory_order_acquire))
    running_.wait(r, std::memory_order_acquire);
}

}  // namespace hashgate
