// Splits a byte stream into newline-terminated lines with a hard cap on
// line length. Incomplete input is bounded by the cap (h11 does the same
// with 16 KiB), so a peer that never sends '\n' cannot grow our memory.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hashgate {

class LineFramer {
 public:
  enum class Status { kLine, kNeedMore, kTooLong };

  explicit LineFramer(size_t max_line) : max_line_(max_line) {}

  // Appends received bytes. Lines are taken out with next_line().
  void feed(std::string_view bytes);
  // kLine: `line` holds the next line without its "\n" (and without a
  // trailing "\r"), valid until the next feed() or next_line() call.
  // kTooLong: a line exceeded the cap; the framer stays in that state.
  Status next_line(std::string_view& line);
  // Bytes held that do not yet form a complete line.
  size_t buffered() const { return buf_.size() - start_; }
  // With a spare buffer shared by many framers on one thread, the buffer is
  // borrowed when bytes arrive and handed back once every line is taken:
  // only a framer holding part of a line keeps memory.
  void set_spare(std::string* spare) { spare_ = spare; }
  size_t capacity() const { return buf_.capacity(); }

 private:
  Status fail();
  std::string buf_;
  size_t start_ = 0;  // first unconsumed byte
  size_t scan_ = 0;   // bytes from start_ already known to hold no '\n'
  size_t max_line_;
  bool too_long_ = false;
  std::string* spare_ = nullptr;
};

}  // namespace hashgate
