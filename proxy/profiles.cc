#include "proxy/profiles.h"

namespace hashgate {

namespace {

[[noreturn]] void unknown(const std::string& where, const std::string& name, const ProfileBook& book) {
  std::string known;
  for (const FirmwareProfile& p : book.all()) known += (known.empty() ? "" : ", ") + p.name;
  throw conf::ConfigError(where + ": unknown profile '" + name + "' (known: " + known + ")");
}

FirmwareProfile from_spec(const conf::ProfileSpec& s, const ProfileBook& builtins) {
  const std::string base_name = !s.base.empty() ? s.base : builtins.find(s.name) ? s.name : "default";
  const FirmwareProfile* base = builtins.find(base_name);
  if (!base) unknown(s.base_where.empty() ? s.where : s.base_where, base_name, builtins);
  FirmwareProfile p = *base;
  p.name = s.name;
  if (!s.match.empty()) p.match = s.match;
  else if (base_name != s.name) p.match.clear();  // a new profile is matched only by its own patterns
  if (s.max_extranonce2_size) p.max_extranonce2_size = *s.max_extranonce2_size;
  if (s.max_extranonce1_size) p.max_extranonce1_size = *s.max_extranonce1_size;
  if (s.max_worker_name) p.max_worker_name = *s.max_worker_name;
  if (s.difficulty) {
    p.difficulty = *s.difficulty == "integer"        ? DifficultyForm::kInteger
                   : *s.difficulty == "power_of_two" ? DifficultyForm::kPowerOfTwo
                                                     : DifficultyForm::kFractional;
  }
  if (s.min_difficulty) p.min_difficulty = *s.min_difficulty;
  if (s.set_extranonce) p.acts_on_set_extranonce = *s.set_extranonce;
  if (s.reconnect) p.follows_reconnect = *s.reconnect;
  if (s.version_rolling_without_configure) p.rolls_without_configure = *s.version_rolling_without_configure;
  p.note = "operator profile (config " + s.where + "), based on " + base_name;
  return p;
}

std::vector<FirmwareProfile> operator_profiles(const conf::Config& cfg) {
  const ProfileBook builtins;
  std::vector<FirmwareProfile> out;
  out.reserve(cfg.compatibility.profiles.size());
  for (const conf::ProfileSpec& s : cfg.compatibility.profiles) out.push_back(from_spec(s, builtins));
  return out;
}

}  // namespace

ProfileSelector::ProfileSelector(const conf::Config& cfg) : book_(operator_profiles(cfg)) {
  safe_.reserve(book_.all().size());
  for (const FirmwareProfile& p : book_.all()) {
    FirmwareProfile s = p;
    s.acts_on_set_extranonce = false;
    safe_.push_back(std::move(s));
  }
  for (const conf::Listener& l : cfg.listeners) {
    const FirmwareProfile* p = nullptr;
    if (!l.profile.empty() && !(p = book_.find(l.profile))) unknown(l.profile_where, l.profile, book_);
    by_listener_.push_back(p);
  }
  for (const conf::CidrProfile& c : cfg.compatibility.by_cidr) {
    const FirmwareProfile* p = book_.find(c.profile);
    if (!p) unknown(c.where, c.profile, book_);
    by_cidr_.emplace_back(*Cidr::parse(c.cidr), p);  // the config checked the CIDR
  }
}

const FirmwareProfile* ProfileSelector::select(size_t listener, const Address& peer, std::string_view agent) const {
  if (listener < by_listener_.size() && by_listener_[listener]) return by_listener_[listener];
  for (const auto& [cidr, p] : by_cidr_)
    if (cidr.contains(peer)) return p;
  return book_.match(agent);
}

size_t ProfileSelector::index(const FirmwareProfile* p) const {
  if (p >= safe_.data() && p < safe_.data() + safe_.size()) return size_t(p - safe_.data());
  return book_.index_of(p);
}

const FirmwareProfile* ProfileSelector::safe_variant(const FirmwareProfile* p) const {
  if (p >= safe_.data() && p < safe_.data() + safe_.size()) return p;  // already the safe one
  return &safe_[book_.index_of(p)];
}

}  // namespace hashgate
