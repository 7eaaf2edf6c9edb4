// Firmware compatibility profiles: what one family of mining firmware can
// take on Stratum V1, so that each miner is spoken to the way its firmware
// needs (extranonce sizes, difficulty form, how it can be moved). Matched by
// the user agent of mining.subscribe; the operator can add profiles and pin
// listeners or address ranges to one. Facts and sources: README's table of
// built-in profiles and shared/firmware-facts.md. Sans-I/O, no allocation
// after the book is built.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hashgate {

// How a firmware reads mining.set_difficulty.
enum class DifficultyForm : uint8_t {
  kFractional,  // any positive number
  kInteger,     // truncates to an integer: hashgate sends whole numbers (rounded down, at least 1)
  kPowerOfTwo,  // whole powers of two, rounded down (at least 1)
};

// How a miner that is not on the pool it should be on can be moved.
enum class MoveBy : uint8_t {
  kSetExtranonce,  // in place: mining.set_extranonce, difficulty, clean notify
  kReconnect,      // client.reconnect naming hashgate's host and port
  kClose,          // close the connection: every firmware connects again at once
};

const char* to_string(DifficultyForm f);
const char* to_string(MoveBy m);

struct FirmwareProfile {
  std::string name;
  // User-agent patterns ('*' any run, '?' one character, case-insensitive);
  // the first profile with a matching pattern wins.
  std::vector<std::string> match;
  // Longest extranonce2 the firmware handles; longer ones make it hash on
  // and lose every share (cgminer lineage: 8). 0: no limit.
  uint32_t max_extranonce2_size = 8;
  // Longest extranonce1 it tolerates (bytes). 0: no limit.
  uint32_t max_extranonce1_size = 0;
  DifficultyForm difficulty = DifficultyForm::kFractional;
  double min_difficulty = 0;  // the hardware cannot work below this
  // Acts on mining.set_extranonce when it subscribed to it; false: the
  // subscription is taken but ignored, so moves never use it.
  bool acts_on_set_extranonce = true;
  // Follows a client.reconnect naming a host and port; false: it is closed instead.
  bool follows_reconnect = true;
  // Rolls version bits without mining.configure (the pool's mask is granted unasked).
  bool rolls_without_configure = false;
  // Longest worker name it sends intact (longer ones are cut or overflow). 0: no limit.
  uint32_t max_worker_name = 0;
  // Message-order quirk: sends mining.suggest_difficulty before subscribe.
  bool suggests_before_subscribe = false;
  // Goes idle after an unasked mining.set_version_mask: only sent when it negotiated.
  bool needs_configure_for_version_mask = false;
  std::string note;  // one line for operators: why these rules (shown in the API)

  // The difficulty this firmware will really work at for a wanted `d`.
  double shape(double d) const;
  // How this firmware is moved; `subscribed` is whether it sent mining.extranonce.subscribe.
  MoveBy move_by(bool subscribed) const;
};

// '*' and '?' patterns, ASCII case-insensitive.
bool glob_match(std::string_view pattern, std::string_view text);

// The built-in profiles, most specific first; the last is "default"
// (cgminer-family behaviour, what the facts say when nothing else is known).
const std::vector<FirmwareProfile>& builtin_profiles();

// The profiles in force: the operator's (tried first, in their order), then
// the built-ins. Built once (at start and on reload); lookups allocate nothing.
class ProfileBook {
 public:
  ProfileBook();  // built-ins only
  explicit ProfileBook(std::vector<FirmwareProfile> operator_profiles);

  // The profile for a user agent; never null (default when nothing matches).
  const FirmwareProfile* match(std::string_view agent) const;
  // A profile by name (operator profiles shadow built-ins of the same name); null if none.
  const FirmwareProfile* find(std::string_view name) const;
  const FirmwareProfile* fallback() const { return &all_.back(); }
  const std::vector<FirmwareProfile>& all() const { return all_; }
  size_t index_of(const FirmwareProfile* p) const { return size_t(p - all_.data()); }

 private:
  std::vector<FirmwareProfile> all_;
};

// What a miner of profile `p` gets from a pool space of `pool_extranonce2`
// bytes of which hashgate keeps `prefix` per session: the extranonce2 size
// the miner is told, and how many bytes (zeros) hashgate fixes between the
// prefix and the miner's part so that the miner's size fits the profile.
struct SpaceShape {
  uint32_t miner_extranonce2 = 0;
  uint32_t fixed_bytes = 0;
  bool below_minimum = false;  // the miner's part is under `min_extranonce2`
};
SpaceShape shape_space(const FirmwareProfile& p, uint32_t pool_extranonce2, uint32_t prefix,
                       uint32_t min_extranonce2);

}  // namespace hashgate
