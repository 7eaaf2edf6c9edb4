// A reload's first step, without I/O: what of the new config cannot change
// while hashgate runs (algorithm, listeners, hashing, aggregation, the
// admin listener, the log format). Those are taken back from the running
// config into `next` where the gateway would otherwise read them, and each
// is named in a note ("... changed: takes effect after a restart"). The
// rest of `next` (pools, failover, vardiff, limits, bans, log level,
// economics, integrity) is the gateway's to apply live.
#pragma once

#include <string>
#include <vector>

#include "conf/config.h"

namespace hashgate {

// Appends a note per setting that needs a restart.
void keep_restart_only(const conf::Config& running, conf::Config& next, std::vector<std::string>& notes);

}  // namespace hashgate
