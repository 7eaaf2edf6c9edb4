#include "hw/serial.h"

#include <asm/termbits.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hashgate::hw {
namespace {
std::string errtext(const char* call) { return std::string(call) + ": " + std::strerror(errno); }
}  // namespace

bool set_serial_baud(int fd, uint32_t baud, std::string& error) {
  struct termios2 t;
  if (ioctl(fd, TCGETS2, &t) != 0) {
    error = errtext("TCGETS2");
    return false;
  }
  t.c_cflag &= ~tcflag_t(CBAUD);
  t.c_cflag |= BOTHER;
  t.c_cflag &= ~tcflag_t(CIBAUD);
  t.c_cflag |= BOTHER << IBSHIFT;
  t.c_ispeed = baud;
  t.c_ospeed = baud;
  if (ioctl(fd, TCSETS2, &t) != 0) {
    error = errtext("TCSETS2");
    return false;
  }
  return true;
}

uint32_t serial_baud(int fd) {
  struct termios2 t;
  if (ioctl(fd, TCGETS2, &t) != 0) return 0;
  return t.c_ospeed;
}

int open_serial(const std::string& path, uint32_t baud, std::string& error) {
  int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    error = path + ": " + errtext("open");
    return -1;
  }
  struct termios2 t;
  if (ioctl(fd, TCGETS2, &t) != 0) {
    error = path + ": not a tty (" + errtext("TCGETS2") + ")";
    ::close(fd);
    return -1;
  }
  // Raw 8N1: no line discipline, no echo, no flow control, reads return what is there.
  t.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF | IXANY);
  t.c_oflag &= ~tcflag_t(OPOST);
  t.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  t.c_cflag &= ~tcflag_t(CSIZE | PARENB | CSTOPB | CRTSCTS);
  t.c_cflag |= CS8 | CREAD | CLOCAL;
  t.c_cc[VMIN] = 1;  // with O_NONBLOCK: EAGAIN when empty, so 0 means end of file
  t.c_cc[VTIME] = 0;
  if (ioctl(fd, TCSETS2, &t) != 0) {
    error = path + ": " + errtext("TCSETS2");
    ::close(fd);
    return -1;
  }
  std::string e;
  if (!set_serial_baud(fd, baud, e)) {
    error = path + ": baud " + std::to_string(baud) + ": " + e;
    ::close(fd);
    return -1;
  }
  return fd;
}

bool set_modem_lines(int fd, bool dtr, bool rts) {
  int set = (dtr ? TIOCM_DTR : 0) | (rts ? TIOCM_RTS : 0);
  int clear = (dtr ? 0 : TIOCM_DTR) | (rts ? 0 : TIOCM_RTS);
  if (set && ioctl(fd, TIOCMBIS, &set) != 0) return false;  // ENOTTY/EINVAL on a pty: no modem lines
  if (clear && ioctl(fd, TIOCMBIC, &clear) != 0) return false;
  return true;
}

}  // namespace hashgate::hw
