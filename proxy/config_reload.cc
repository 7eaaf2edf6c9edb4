#include "proxy/config_reload.h"

#include <sys/stat.h>

#include <mutex>
#include <optional>
#include <thread>

#include "proxy/job_integrity.h"
#include "proxy/log.h"

namespace hashgate {

bool FileStamp::operator==(const FileStamp& o) const {
  return ok == o.ok && dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec;
}

FileStamp FileStamp::of(const std::string& path) {
  struct stat st {};
  FileStamp f;
  if (stat(path.c_str(), &st) != 0) return f;
  f.ok = true;
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.size = st.st_size;
  f.mtime = st.st_mtim;
  return f;
}

// Between the loop and the reader thread. The thread touches the async
// handle only while `open` (under the mutex), so the loop may close it
// while a read is still blocked.
struct ConfigReloader::Shared {
  std::mutex mu;
  bool open = true;
  uv_async_t* async = nullptr;
  // The finished read: unchanged, a config, or an error.
  bool done = false;
  bool unchanged = false;
  FileStamp stamp;
  std::optional<conf::Config> config;
  std::string error;
};

ConfigReloader::ConfigReloader(uv_loop_t* loop, std::string path, Apply apply, Fail fail)
    : loop_(loop), path_(std::move(path)), apply_(std::move(apply)), fail_(std::move(fail)),
      shared_(std::make_shared<Shared>()), seen_(FileStamp::of(path_)) {
  uv_async_init(loop_, &async_, [](uv_async_t* a) { static_cast<ConfigReloader*>(a->data)->on_done(); });
  async_.data = this;
  shared_->async = &async_;
  uv_timer_init(loop_, &stall_);
  stall_.data = this;
  // Neither keeps the loop alive: it ends when the gateway is done.
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&stall_));
}

bool ConfigReloader::busy() const { return running_; }

void ConfigReloader::request(const char* trigger, bool only_if_changed) {
  if (running_) {
    // One read at a time; the latest request waits for it (a forced one wins).
    again_only_if_changed_ = (again_ ? again_only_if_changed_ : true) && only_if_changed;
    again_ = true;
    again_trigger_ = trigger;
    if (!only_if_changed)
      log::warn("config_reload_queued").kv("config", path_).kv("trigger", trigger)
          .kv("reason", "the previous read of the file has not finished");
    return;
  }
  start(trigger, only_if_changed);
}

void ConfigReloader::start(const std::string& trigger, bool only_if_changed) {
  running_ = true;
  stalled_ = false;
  trigger_ = trigger;
  only_if_changed_ = only_if_changed;
  if (!only_if_changed) log::info("config_reload").kv("config", path_).kv("trigger", trigger);
  uv_timer_start(
      &stall_,
      [](uv_timer_t* t) {
        auto* self = static_cast<ConfigReloader*>(t->data);
        if (!self->running_) return;
        self->stalled_ = true;
        self->fail_("reading " + self->path_ + " has taken more than " + std::to_string(int(kStallSeconds)) +
                    " s (a FIFO without a writer, a hung network mount?); the file is applied if the read completes");
      },
      uint64_t(kStallSeconds * 1000), 0);
  std::thread([shared = shared_, path = path_, seen = seen_, only_if_changed] {
    FileStamp st = FileStamp::of(path);
    bool unchanged = only_if_changed && (!st.ok || st == seen);
    std::optional<conf::Config> config;
    std::string error;
    if (!unchanged) {
      try {
        config = conf::load_file(path);
        JobIntegrity::validate(*config);
      } catch (const conf::ConfigError& e) {
        config.reset();
        error = e.what();
      }
    }
    std::lock_guard<std::mutex> lock(shared->mu);
    if (!shared->open) return;
    shared->done = true;
    shared->unchanged = unchanged;
    shared->stamp = st;
    shared->config = std::move(config);
    shared->error = std::move(error);
    uv_async_send(shared->async);
  }).detach();
}

void ConfigReloader::on_done() {
  bool unchanged = false;
  FileStamp st;
  std::optional<conf::Config> config;
  std::string error;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (!shared_->done) return;
    shared_->done = false;
    unchanged = shared_->unchanged;
    st = shared_->stamp;
    config = std::move(shared_->config);
    shared_->config.reset();
    error = std::move(shared_->error);
  }
  running_ = false;
  uv_timer_stop(&stall_);
  if (!unchanged) {
    seen_ = st;
    if (only_if_changed_) log::info("config_reload").kv("config", path_).kv("trigger", trigger_);
    if (stalled_) log::info("config_reload_completed").kv("config", path_).kv("after", "stall");
    if (config) {
      apply_(std::move(*config));
    } else {
      fail_(error);
    }
  }
  if (again_) {
    again_ = false;
    start(again_trigger_, again_only_if_changed_);
  }
}

void ConfigReloader::close() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->open = false;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&stall_), nullptr);
}

}  // namespace hashgate
