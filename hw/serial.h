// Serial ports for ASIC boards: a tty (a pty in tests) opened raw and
// non-blocking at any baud rate (termios2 with BOTHER, so 1,000,000 and
// 3,125,000 work as well as the standard rates), with DTR/RTS control where
// the device has those lines. The board manager drives the fd from libuv.
#pragma once

#include <cstdint>
#include <string>

namespace hashgate::hw {

// Opens `path` raw, 8N1, non-blocking, at `baud`. Returns the fd, or -1
// with `error` naming the path and the failing call.
int open_serial(const std::string& path, uint32_t baud, std::string& error);
// Changes the line speed; false with `error` on failure.
bool set_serial_baud(int fd, uint32_t baud, std::string& error);
// The line speed as the tty reports it (0 when it cannot be read).
uint32_t serial_baud(int fd);
// Sets the DTR and RTS modem lines. Devices without them (a pty answers
// ENOTTY or EINVAL) are not an error: returns false, sets nothing.
bool set_modem_lines(int fd, bool dtr, bool rts);

}  // namespace hashgate::hw
