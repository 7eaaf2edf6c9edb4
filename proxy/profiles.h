// Which firmware profile a miner gets: the listener's, else its address
// range's, else its user agent's (operator profiles first, then the
// built-ins). Built from the config once (start, reload); a lookup on the
// loop allocates nothing.
#pragma once

#include <string_view>
#include <vector>

#include "conf/config.h"
#include "protocol/firmware_profile.h"
#include "proxy/guard.h"

namespace hashgate {

class ProfileSelector {
 public:
  // Throws conf::ConfigError naming file:line and key for a profile name
  // that no profile has, or a `base` that is not a built-in.
  explicit ProfileSelector(const conf::Config& cfg);

  const FirmwareProfile* select(size_t listener, const Address& peer, std::string_view agent) const;
  // Profiles a miner is switched to when it contradicts its own: the same
  // rules, but moved by client.reconnect or a close, never set_extranonce.
  const FirmwareProfile* safe_variant(const FirmwareProfile* p) const;
  const ProfileBook& book() const { return book_; }
  // The book's index of `p` or of the profile it is the safe variant of.
  size_t index(const FirmwareProfile* p) const;

 private:
  ProfileBook book_;
  std::vector<FirmwareProfile> safe_;               // parallel to book_.all()
  std::vector<const FirmwareProfile*> by_listener_;  // null: by user agent
  std::vector<std::pair<Cidr, const FirmwareProfile*>> by_cidr_;
};

}  // namespace hashgate
