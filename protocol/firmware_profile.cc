#include "protocol/firmware_profile.h"

#include <algorithm>
#include <cmath>

namespace hashgate {

const char* to_string(DifficultyForm f) {
  switch (f) {
    case DifficultyForm::kFractional: return "fractional";
    case DifficultyForm::kInteger: return "integer";
    case DifficultyForm::kPowerOfTwo: return "power_of_two";
  }
  return "?";
}

const char* to_string(MoveBy m) {
  switch (m) {
    case MoveBy::kSetExtranonce: return "set_extranonce";
    case MoveBy::kReconnect: return "reconnect";
    case MoveBy::kClose: return "close";
  }
  return "?";
}

double FirmwareProfile::shape(double d) const {
  d = std::max(d, min_difficulty);
  switch (difficulty) {
    case DifficultyForm::kFractional: return d;
    // Rounded down, so the miner never works above what was asked; a firmware
    // that truncates cannot be sent less than 1 (0.5 would become 0).
    case DifficultyForm::kInteger: return std::max(1.0, std::floor(d));
    case DifficultyForm::kPowerOfTwo: return d < 1 ? 1.0 : std::exp2(std::floor(std::log2(d)));
  }
  return d;
}

MoveBy FirmwareProfile::move_by(bool subscribed) const {
  if (subscribed && acts_on_set_extranonce) return MoveBy::kSetExtranonce;
  return follows_reconnect ? MoveBy::kReconnect : MoveBy::kClose;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
  // Iterative matcher with one backtrack point (the last '*'): linear in
  // practice, never recursive, so a hostile user agent costs nothing.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

// cgminer-lineage firmware: extranonce2 checked only at submit (over 8 bytes
// every share is lost), set_extranonce only with "#xnsub" (so only when it
// subscribed), client.reconnect followed when it names a host.
FirmwareProfile cgminer_family(std::string name, std::vector<std::string> match, std::string note) {
  FirmwareProfile p;
  p.name = std::move(name);
  p.match = std::move(match);
  p.max_extranonce2_size = 8;
  p.max_extranonce1_size = 8;
  p.note = std::move(note);
  return p;
}

std::vector<FirmwareProfile> make_builtins() {
  std::vector<FirmwareProfile> v;
  // LuxOS reports the Antminer model first: before the stock patterns.
  v.push_back(cgminer_family("luxos", {"*LUXminer*"}, "LuxOS: cgminer lineage (weak source)"));
  {
    // Rented S21s roll version bits without negotiating them (datum_gateway#214).
    FirmwareProfile p = cgminer_family("antminer-s21", {"Antminer S21*"},
                                       "Antminer S21 stock: cgminer lineage; rolls version bits without mining.configure");
    p.rolls_without_configure = true;
    v.push_back(std::move(p));
  }
  v.push_back(cgminer_family("antminer", {"bmminer/*", "Antminer *"},
                             "Antminer stock (bmminer): cgminer lineage, extranonce2 at most 8 bytes"));
  {
    FirmwareProfile p = cgminer_family("braiins", {"*bosminer*"},
                                       "Braiins OS+: requires BIP310, follows client.reconnect (since 2020-04-30)");
    v.push_back(std::move(p));
  }
  v.push_back(cgminer_family("vnish", {"xminer-*"}, "Vnish: cgminer lineage"));
  {
    FirmwareProfile p = cgminer_family("whatsminer", {"whatsminer/*"},
                                       "WhatsMiner: suggest_difficulty first; user names over 127 characters overflow; "
                                       "v1.1 may idle after an unasked set_version_mask");
    p.max_worker_name = 127;
    p.suggests_before_subscribe = true;
    p.needs_configure_for_version_mask = true;
    v.push_back(std::move(p));
  }
  {
    FirmwareProfile p = cgminer_family("avalon", {"cgminer/*"}, "Avalon (Canaan cgminer): user names cut at 63 characters");
    p.max_worker_name = 63;
    v.push_back(std::move(p));
  }
  {
    // ESP-Miner truncated fractional difficulties to integers until 2026-04
    // (0.001 became 0) and its ASICs cannot work below 256 (ESP-Miner#1594);
    // extranonce2 is clamped to 32 bytes (ESP-Miner#658).
    FirmwareProfile p;
    p.name = "bitaxe";
    p.match = {"bitaxe/*", "NerdQAxe*", "NMAxe*", "esp-miner*"};
    p.max_extranonce2_size = 32;
    p.max_extranonce1_size = 8;
    p.difficulty = DifficultyForm::kInteger;
    p.min_difficulty = 256;
    p.note = "Bitaxe-class (ESP-Miner): integer difficulties of at least 256; extranonce2 at most 32 bytes";
    v.push_back(std::move(p));
  }
  v.push_back(cgminer_family("epic", {"PowerPlay-*"}, "ePIC PowerPlay"));
  v.push_back(cgminer_family("futurebit", {"bfgminer/*", "apollo-miner*"},
                             "FutureBit Apollo: fails with a long extranonce1 (stratum#1657)"));
  {
    FirmwareProfile p;
    p.name = "nicehash";
    p.match = {"NiceHash/*"};
    p.max_extranonce2_size = 8;
    p.note = "NiceHash: set_extranonce applies from the next notify";
    v.push_back(std::move(p));
  }
  {
    // minerd and cpuminer-opt take any extranonce2 and fractional
    // difficulties; they drop a client.reconnect without host or port, so
    // hashgate always names both.
    FirmwareProfile p;
    p.name = "cpuminer";
    p.match = {"cpuminer/*", "cpuminer-opt/*", "cpuminer-multi/*", "minerd/*"};
    p.max_extranonce2_size = 0;
    p.note = "CPU miners (pooler's minerd, cpuminer-opt): fractional difficulties, any extranonce2 size";
    v.push_back(std::move(p));
  }
  v.push_back(cgminer_family("default", {"*"}, "unknown firmware: cgminer-family rules (extranonce2 at most 8 bytes)"));
  v.back().max_extranonce1_size = 0;
  return v;
}

}  // namespace

const std::vector<FirmwareProfile>& builtin_profiles() {
  static const std::vector<FirmwareProfile> builtins = make_builtins();
  return builtins;
}

ProfileBook::ProfileBook() : ProfileBook(std::vector<FirmwareProfile>{}) {}

ProfileBook::ProfileBook(std::vector<FirmwareProfile> operator_profiles) : all_(std::move(operator_profiles)) {
  const auto& b = builtin_profiles();
  all_.insert(all_.end(), b.begin(), b.end());
}

const FirmwareProfile* ProfileBook::match(std::string_view agent) const {
  for (const FirmwareProfile& p : all_)
    for (const std::string& pat : p.match)
      if (glob_match(pat, agent)) return &p;
  return fallback();
}

const FirmwareProfile* ProfileBook::find(std::string_view name) const {
  for (const FirmwareProfile& p : all_)
    if (p.name == name) return &p;
  return nullptr;
}

SpaceShape shape_space(const FirmwareProfile& p, uint32_t pool_extranonce2, uint32_t prefix,
                       uint32_t min_extranonce2) {
  SpaceShape s;
  const uint32_t left = pool_extranonce2 > prefix ? pool_extranonce2 - prefix : 0;
  s.miner_extranonce2 = left;
  if (p.max_extranonce2_size && left > p.max_extranonce2_size) {
    s.miner_extranonce2 = p.max_extranonce2_size;
    s.fixed_bytes = left - p.max_extranonce2_size;
  }
  s.below_minimum = s.miner_extranonce2 < min_extranonce2;
  return s;
}

}  // namespace hashgate
