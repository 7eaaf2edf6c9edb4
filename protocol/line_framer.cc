#include "protocol/line_framer.h"

#include <cstring>

namespace hashgate {

void LineFramer::feed(std::string_view bytes) {
  if (too_long_) return;
  if (start_ > 0 && start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  } else if (start_ > 4096 && start_ * 2 > buf_.size()) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  if (spare_ && buf_.empty() && buf_.capacity() < spare_->capacity()) buf_.swap(*spare_);
  buf_.append(bytes);
}

LineFramer::Status LineFramer::next_line(std::string_view& line) {
  if (too_long_) return Status::kTooLong;
  const char* base = buf_.data() + start_;
  size_t avail = buf_.size() - start_;
  const void* nl = std::memchr(base + scan_, '\n', avail - scan_);
  if (!nl) {
    scan_ = avail;
    if (avail > max_line_) return fail();
    if (avail == 0 && spare_) {
      // Every line taken: the buffer goes back to the spare (or is freed).
      buf_.clear();
      start_ = scan_ = 0;
      if (spare_->capacity() < buf_.capacity()) {
        spare_->swap(buf_);
        spare_->clear();
      }
      std::string().swap(buf_);
    }
    return Status::kNeedMore;
  }
  size_t len = static_cast<const char*>(nl) - base;
  if (len > max_line_) return fail();
  start_ += len + 1;
  scan_ = 0;
  if (len > 0 && base[len - 1] == '\r') --len;
  line = std::string_view(base, len);
  return Status::kLine;
}

LineFramer::Status LineFramer::fail() {
  // The rest of the stream cannot be framed reliably: drop it all.
  too_long_ = true;
  std::string().swap(buf_);
  start_ = scan_ = 0;
  return Status::kTooLong;
}

}  // namespace hashgate
