// hashgate-board-emu: an emulated ASIC board on a pseudo-terminal, for tests
// and demos. It prints "ready LINK" once the link points at the pty's slave
// side, then serves until SIGTERM/SIGINT, when it stops finding nonces and waits
// (up to 20 s) until the host has read every byte it sent. Stats go to --stats FILE (JSON,
// rewritten twice a second). The link is removed on exit: that is the board
// being unplugged.
//
//   hashgate-board-emu --driver bm1370|bm1368|bm1366|gc3355|zeus --link PATH
//       [--chips N] [--hashrate H] [--difficulty-scale S] [--stats FILE]
//       [--fault-crc-every N] [--fault-junk-every N] [--fault-invalid-every N]
//       [--missing-chip K] [--silent-after SECONDS] [--min-work-gap SECONDS]
#include <asm/termbits.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "hw/emulator.h"

extern "C" {
int posix_openpt(int flags);
int grantpt(int fd);
int unlockpt(int fd);
char* ptsname(int fd);
}

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int usage(const char* why) {
  std::fprintf(stderr, "hashgate-board-emu: %s\n(see the comment at the top of hw/emulator_main.cc)\n", why);
  return 2;
}

void write_stats(const std::string& path, const hashgate::hw::EmulatorStats& s, uint32_t baud) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    std::string j = s.to_json();
    j.insert(j.size() - 1, ",\"line_baud\":" + std::to_string(baud));
    f << j << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}
}  // namespace

int main(int argc, char** argv) {
  hashgate::hw::EmulatorOptions o;
  std::string link, stats_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "hashgate-board-emu: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--driver") o.driver = value();
      else if (a == "--link") link = value();
      else if (a == "--stats") stats_path = value();
      else if (a == "--chips") o.chips = unsigned(std::stoul(value()));
      else if (a == "--hashrate") o.hashrate = std::stod(value());
      else if (a == "--difficulty-scale") o.difficulty_scale = std::stod(value());
      else if (a == "--fault-crc-every") o.fault_crc_every = unsigned(std::stoul(value()));
      else if (a == "--fault-junk-every") o.fault_junk_every = unsigned(std::stoul(value()));
      else if (a == "--fault-invalid-every") o.fault_invalid_every = unsigned(std::stoul(value()));
      else if (a == "--missing-chip") o.missing_chip = std::stoi(value());
      else if (a == "--silent-after") o.silent_after = std::stod(value());
      else if (a == "--min-work-gap") o.min_work_gap = std::stod(value());
      else return usage(("unknown option " + a).c_str());
    } catch (const std::exception&) {
      return usage(("bad value for " + a).c_str());
    }
  }
  if (link.empty()) return usage("--link PATH is required");
  auto emu = hashgate::hw::Emulator::make(o);
  if (!emu) return usage(("unknown driver '" + o.driver + "' or zero chips").c_str());

  int master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    std::perror("posix_openpt");
    return 1;
  }
  std::string slave = ptsname(master);
  // Raw on the board's side too, so no byte is translated.
  struct termios2 t;
  if (ioctl(master, TCGETS2, &t) == 0) {
    t.c_iflag = 0;
    t.c_oflag = 0;
    t.c_lflag = 0;
    t.c_cflag = (t.c_cflag & ~tcflag_t(CSIZE | PARENB)) | CS8 | CREAD | CLOCAL;
    ioctl(master, TCSETS2, &t);
  }
  // Keep the slave open ourselves so the pty never reports a hangup between host opens.
  int keep = ::open(slave.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  std::string tmp_link = link + ".new";
  ::unlink(tmp_link.c_str());
  if (::symlink(slave.c_str(), tmp_link.c_str()) != 0 || ::rename(tmp_link.c_str(), link.c_str()) != 0) {
    std::perror("symlink");
    return 1;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::printf("ready %s %s\n", link.c_str(), slave.c_str());
  std::fflush(stdout);

  double last_stats = 0;
  std::string out;
  uint8_t buf[4096];
  while (!g_stop) {
    pollfd p{master, short(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
    ::poll(&p, 1, 5);
    double now = now_seconds();
    for (;;) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;
      emu->on_bytes({buf, size_t(n)}, now);
    }
    out += emu->poll(now);
    while (!out.empty()) {
      ssize_t n = ::write(master, out.data(), out.size());
      if (n <= 0) break;
      out.erase(0, size_t(n));
    }
    if (out.size() > (1 << 20)) out.clear();  // nobody reads: a real board's FIFO overflows too
    if (now - last_stats >= 0.5) {
      last_stats = now;
      struct termios2 tt;
      uint32_t baud = ioctl(master, TCGETS2, &tt) == 0 ? tt.c_ospeed : 0;
      write_stats(stats_path, emu->stats(), baud);
    }
  }
  // Unplugged: no new nonces, but what was found goes out and is read
  // before the link goes (the stats count every nonce found, so the host
  // must have had the chance to read each one). Bounded: a host that stopped
  // reading leaves after 20 s.
  for (const double give_up = now_seconds() + 20; now_seconds() < give_up;) {
    while (!out.empty()) {
      ssize_t n = ::write(master, out.data(), out.size());
      if (n <= 0) break;
      out.erase(0, size_t(n));
    }
    int unread = 0;
    if (out.empty() && (keep < 0 || ::ioctl(keep, FIONREAD, &unread) != 0 || unread == 0)) break;
    pollfd p{master, short(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
    ::poll(&p, 1, 10);
    while (::read(master, buf, sizeof buf) > 0) {
    }
  }
  struct termios2 tt;
  write_stats(stats_path, emu->stats(), ioctl(master, TCGETS2, &tt) == 0 ? tt.c_ospeed : 0);
  ::unlink(link.c_str());
  if (keep >= 0) ::close(keep);
  ::close(master);
  return 0;
}
