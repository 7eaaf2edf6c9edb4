// Config reloads read the file off the loop (issue 17.11): SIGHUP and
// --watch-config used to stat, read and parse on the loop, so a config path
// that blocks (a FIFO without a writer, a hung network mount) stalled every
// miner for as long as the read took. A reader thread now stats, loads and
// validates; the loop only applies the parsed result (or the error).
//
// One read at a time: a request while one is running is remembered and
// served after it (a burst of SIGHUPs is one more read, not a thread each).
// A read still running after kStallSeconds is reported as a failed reload
// (the running config stays); if it completes later, its result applies.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "conf/config.h"

namespace hashgate {

// What a stat() says about a file: a change to any of these is a change.
struct FileStamp {
  bool ok = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  bool operator==(const FileStamp& o) const;
  static FileStamp of(const std::string& path);  // follows symlinks (a ConfigMap's ..data)
};

class ConfigReloader {
 public:
  static constexpr double kStallSeconds = 5;
  // Both are called on the loop.
  using Apply = std::function<void(conf::Config next)>;
  using Fail = std::function<void(const std::string& why)>;

  ConfigReloader(uv_loop_t* loop, std::string path, Apply apply, Fail fail);
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // A reload: `trigger` names it in the log. With only_if_changed (the file
  // watch), the file is read only when its stamp differs from the last read's.
  void request(const char* trigger, bool only_if_changed);
  bool busy() const;
  // Before the loop's last run: closes the handles; a read still blocked is
  // abandoned (its thread ends with the process).
  void close();

 private:
  struct Shared;
  void start(const std::string& trigger, bool only_if_changed);
  void on_done();

  uv_loop_t* loop_;
  std::string path_;
  Apply apply_;
  Fail fail_;
  uv_async_t async_;
  uv_timer_t stall_;
  std::shared_ptr<Shared> shared_;
  FileStamp seen_;
  bool running_ = false;
  bool stalled_ = false;
  bool again_ = false;  // requested while a read ran
  bool again_only_if_changed_ = true;
  std::string again_trigger_;
  std::string trigger_;
  bool only_if_changed_ = false;
};

}  // namespace hashgate
