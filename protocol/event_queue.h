// The events a sans-I/O state machine hands to its driver, in order. The
// driver drains them with next(); the storage is kept for reuse, or, with a
// spare shared by many queues on one thread, lent back to the spare once
// drained: then an idle queue holds no memory and a busy one allocates none.
#pragma once

#include <utility>
#include <vector>

namespace hashgate {

template <typename Event>
class EventQueue {
 public:
  void set_spare(std::vector<Event>* spare) { spare_ = spare; }
  void push(Event e) {
    if (spare_ && events_.capacity() == 0 && spare_->capacity() != 0) events_.swap(*spare_);
    events_.push_back(std::move(e));
  }
  bool next(Event& out) {
    if (read_ >= events_.size()) {
      events_.clear();
      read_ = 0;
      if (spare_ && events_.capacity() != 0) {
        if (spare_->capacity() == 0) {
          spare_->swap(events_);
        } else {
          std::vector<Event>().swap(events_);
        }
      }
      return false;
    }
    out = std::move(events_[read_++]);
    return true;
  }
  size_t capacity() const { return events_.capacity(); }

 private:
  std::vector<Event> events_;
  size_t read_ = 0;
  std::vector<Event>* spare_ = nullptr;
};

}  // namespace hashgate
