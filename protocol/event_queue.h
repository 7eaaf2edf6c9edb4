// The events a sans-I/O state machine hands to its driver, in order. The
// driver drains them with next(); the storage is kept for reuse.
#pragma once

#include <utility>
#include <vector>

namespace hashgate {

template <typename Event>
class EventQueue {
 public:
  void push(Event e) { events_.push_back(std::move(e)); }
  bool next(Event& out) {
    if (read_ >= events_.size()) {
      events_.clear();
      read_ = 0;
      return false;
    }
    out = std::move(events_[read_++]);
    return true;
  }

 private:
  std::vector<Event> events_;
  size_t read_ = 0;
};

}  // namespace hashgate
