#include "protocol/pool_integrity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace hashgate {
namespace {

using Evidence = std::vector<std::pair<std::string, std::string>>;

// Consensus: a coinbase input script holds 2..100 bytes.
constexpr size_t kMaxScriptSig = 100;
// BIP320: the version bits miners may roll; BIP9: the top three bits 001.
constexpr uint32_t kRollableBits = 0x1fffe000;
constexpr uint32_t kBip9TopMask = 0xe0000000, kBip9Top = 0x20000000;

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string describe_outputs(const std::vector<CoinbaseOutput>& outs) {
  std::string s;
  for (const CoinbaseOutput& o : outs) {
    if (!s.empty()) s += ' ';
    char v[32];
    std::snprintf(v, sizeof v, "%llu.%08llu", (unsigned long long)(o.value / 100000000),
                  (unsigned long long)(o.value % 100000000));
    s += v;
    s += "->";
    s += describe_script(o.script_pubkey);
  }
  return s.empty() ? "(none)" : s;
}

// The output scripts a lock compares: sorted, without OP_RETURN outputs
// (the witness commitment changes with every template).
std::vector<Bytes> payout_scripts(const std::vector<CoinbaseOutput>& outs) {
  std::vector<Bytes> v;
  for (const CoinbaseOutput& o : outs)
    if (o.script_pubkey.empty() || o.script_pubkey[0] != 0x6a) v.push_back(o.script_pubkey);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

std::string describe_scripts(const std::vector<Bytes>& v) {
  std::string s;
  for (const Bytes& b : v) s += (s.empty() ? "" : " ") + describe_script(b);
  return s.empty() ? "(none)" : s;
}

}  // namespace

const char* integrity_check_name(IntegrityCheck c) {
  switch (c) {
    case IntegrityCheck::kStaleTip: return "stale_tip";
    case IntegrityCheck::kAhead: return "ahead";
    case IntegrityCheck::kCoinbasePayout: return "coinbase_payout";
    case IntegrityCheck::kCoinbaseChanged: return "coinbase_changed";
    case IntegrityCheck::kCoinbaseMalformed: return "coinbase_malformed";
    case IntegrityCheck::kNtime: return "ntime";
    case IntegrityCheck::kNbits: return "nbits";
    case IntegrityCheck::kVersion: return "version";
    case IntegrityCheck::kExtranonce: return "extranonce";
    case IntegrityCheck::kCount: break;
  }
  return "?";
}

Hash256 prevhash_from_display(const Hash256& display) {
  // Display order is the hash reversed; notify's form swaps each 4-byte word
  // of the hash: together, display's words in reverse order.
  Hash256 out{};
  for (size_t w = 0; w < 8; ++w)
    for (size_t b = 0; b < 4; ++b) out[4 * w + b] = display[4 * (7 - w) + b];
  return out;
}

std::string prevhash_display_hex(const Hash256& notify_form) {
  return hex_encode(prevhash_from_display(notify_form));  // the mapping is its own inverse
}

std::string describe_script(std::span<const uint8_t> s) {
  auto hex = [&](size_t from, size_t n) { return hex_encode(s.subspan(from, n)); };
  if (s.size() == 25 && s[0] == 0x76 && s[1] == 0xa9 && s[2] == 0x14 && s[23] == 0x88 && s[24] == 0xac)
    return "p2pkh:" + hex(3, 20);
  if (s.size() == 23 && s[0] == 0xa9 && s[1] == 0x14 && s[22] == 0x87) return "p2sh:" + hex(2, 20);
  if (s.size() == 22 && s[0] == 0x00 && s[1] == 0x14) return "p2wpkh:" + hex(2, 20);
  if (s.size() == 34 && s[0] == 0x00 && s[1] == 0x20) return "p2wsh:" + hex(2, 32);
  if (s.size() == 34 && s[0] == 0x51 && s[1] == 0x20) return "p2tr:" + hex(2, 32);
  if (!s.empty() && s[0] == 0x6a) return "op_return";
  return "script:" + hex_encode(s.subspan(0, std::min<size_t>(s.size(), 64)));
}

JobFacts job_facts(const NotifyParams& n, size_t extranonce1_size, uint32_t extranonce2_size) {
  JobFacts f;
  f.prevhash = n.prevhash;
  f.version = n.version;
  f.nbits = n.nbits;
  f.ntime = n.ntime;
  // The extranonce's bytes do not change what is checked: zeros stand in.
  const Bytes en1(extranonce1_size, 0), en2(extranonce2_size, 0);
  JobCoinbaseResult r = parse_job_coinbase(n.coinb1, en1, en2, extranonce2_size, n.coinb2);
  if (!r) {
    f.coinbase_error = r.error().message;
    return f;
  }
  if (!r->extranonce_in_script) {
    f.coinbase_error = "the extranonce lies outside the coinbase input's script";
    return f;
  }
  f.coinbase_ok = true;
  f.height = r->coinbase.height;
  f.outputs = r->coinbase.outputs;
  const size_t en = extranonce1_size + extranonce2_size;
  const size_t rest = r->coinbase.script_sig.size() - en;
  f.extranonce_room = rest < kMaxScriptSig ? kMaxScriptSig - rest : 0;
  return f;
}

IntegrityMonitor::IntegrityMonitor(IntegrityOptions opts, std::vector<PoolRules> pools) : opts_(std::move(opts)) {
  for (PoolRules& r : pools) {
    PoolState ps;
    ps.rules = std::move(r);
    pools_.push_back(std::move(ps));
  }
}

void IntegrityMonitor::emit(size_t pool, IntegrityCheck c, IntegrityAction a, Evidence ev) {
  if (a != IntegrityAction::kClear && a != IntegrityAction::kFailPool) ++pools_[pool].events[size_t(c)];
  events_.push(IntegrityEvent{pool, c, a, std::move(ev)});
}

void IntegrityMonitor::set_flag(size_t pool, IntegrityCheck c, bool on, Evidence ev) {
  PoolState& ps = pools_[pool];
  const uint32_t bit = 1u << unsigned(c);
  if (on == bool(ps.flags & bit)) return;
  ps.flags ^= bit;
  emit(pool, c, on ? IntegrityAction::kFlag : IntegrityAction::kClear, std::move(ev));
}

IntegrityMonitor::Tip* IntegrityMonitor::find_tip(Chain& c, const Hash256& h) {
  for (auto it = c.tips.rbegin(); it != c.tips.rend(); ++it)
    if (it->prevhash == h) return &*it;
  return nullptr;
}

const IntegrityMonitor::Tip* IntegrityMonitor::find_tip(const Chain& c, const Hash256& h) const {
  for (auto it = c.tips.rbegin(); it != c.tips.rend(); ++it)
    if (it->prevhash == h) return &*it;
  return nullptr;
}

IntegrityMonitor::Chain& IntegrityMonitor::chain_for(const std::string& declared, const Hash256& prevhash,
                                                     std::optional<uint32_t> tip_height, const std::string& self) {
  auto make = [&](const std::string& name) -> Chain& {
    auto [it, fresh] = chains_.try_emplace(name);
    if (fresh) {
      it->second.name = name;
      chain_order_.push_back(name);
    }
    return it->second;
  };
  if (!declared.empty()) return make(declared);
  // Recognised: the chain that saw this block hash, else one whose best
  // height is close to this tip's.
  for (const std::string& name : chain_order_)
    if (find_tip(chains_[name], prevhash)) return chains_[name];
  if (tip_height)
    for (const std::string& name : chain_order_) {
      const Chain& c = chains_[name];
      if (c.best_height && std::llabs(int64_t(*c.best_height) - int64_t(*tip_height)) <= opts_.chain_height_window)
        return chains_[name];
    }
  return make("auto:" + self);
}

IntegrityMonitor::Tip& IntegrityMonitor::observe_tip(Chain& c, const Hash256& prevhash,
                                                     std::optional<uint32_t> tip_height, const Hash256* previous,
                                                     const std::string& source, double now, bool authoritative) {
  Tip* t = find_tip(c, prevhash);
  const bool fresh = t == nullptr;
  if (fresh) {
    Tip fresh_tip;
    fresh_tip.prevhash = prevhash;
    fresh_tip.height = tip_height;
    fresh_tip.first_seen = now;
    c.tips.push_back(std::move(fresh_tip));
    if (c.tips.size() > kMaxTips) c.tips.pop_front();
    t = &c.tips.back();
  } else if (!t->height && tip_height) {
    t->height = tip_height;
  }
  if (!fresh && !authoritative) return *t;
  if (authoritative) t->superseded = false;  // the node's best is current, whatever pools did before
  // A height far above every other source supersedes nothing: it is
  // flagged instead (a pool cannot make the others look stale by lying).
  std::optional<uint32_t> others;
  for (const PoolState& ps : pools_)
    if (ps.has_tip && ps.chain == c.name && ps.height && ps.prevhash != prevhash && "pool " + ps.rules.name != source)
      others = std::max(others.value_or(0), *ps.height);
  if (node_height_ && node_chain_ == c.name && source != "node") others = std::max(others.value_or(0), *node_height_);
  if (!authoritative && tip_height && others && *tip_height > *others + opts_.ahead_blocks) return *t;
  if (tip_height && (!c.best_height || *tip_height > *c.best_height)) c.best_height = tip_height;
  auto supersede = [&](Tip& o) {
    o.superseded = true;
    o.superseded_at = now;
    o.superseded_by = source;
    o.newer_height = tip_height;
    o.newer_hash = prevhash;
  };
  for (Tip& o : c.tips) {
    if (&o == t || o.superseded || !tip_height || !o.height) continue;
    // The node's best block decides between blocks of the same height too.
    if (*o.height < *tip_height || (authoritative && *o.height <= *tip_height)) supersede(o);
  }
  // Without heights, a pool leaving a tip for a new one moved on from it.
  if (previous && *previous != prevhash) {
    Tip* p = find_tip(c, *previous);
    if (p && !p->superseded && !(tip_height && p->height && *tip_height <= *p->height)) supersede(*p);
  }
  return *t;
}

bool IntegrityMonitor::on_job(size_t pool, const JobFacts& job, uint32_t version_mask, double now, double unix_now) {
  PoolState& ps = pools_[pool];
  const std::string self = ps.rules.name;
  bool refuse = false;
  check_coinbase(pool, job, refuse);
  if (refuse) return false;
  if (job.extranonce_room) ps.extranonce_room = job.extranonce_room;

  // Sanity of the job itself: counted per job, the flag kept while it lasts.
  const double offset = double(job.ntime) - unix_now;
  const bool ntime_bad = std::fabs(offset) > opts_.ntime_window_seconds;
  if (ntime_bad)
    emit(pool, IntegrityCheck::kNtime, IntegrityAction::kFlag,
         {{"ntime", std::to_string(job.ntime)}, {"local", num(unix_now)}, {"offset_seconds", num(offset)},
          {"window_seconds", num(opts_.ntime_window_seconds)}});
  ps.flags = ntime_bad ? ps.flags | 1u << unsigned(IntegrityCheck::kNtime)
                       : ps.flags & ~(1u << unsigned(IntegrityCheck::kNtime));
  const bool version_bad = (version_mask & ~kRollableBits) != 0 ||
                           ((job.version & kBip9TopMask) != kBip9Top && (job.version == 0 || job.version > 4));
  if (version_bad)
    emit(pool, IntegrityCheck::kVersion, IntegrityAction::kFlag,
         {{"version", hex_u32_string(job.version)}, {"mask", hex_u32_string(version_mask)},
          {"rollable", hex_u32_string(kRollableBits)}});
  ps.flags = version_bad ? ps.flags | 1u << unsigned(IntegrityCheck::kVersion)
                         : ps.flags & ~(1u << unsigned(IntegrityCheck::kVersion));

  // Tip agreement.
  const std::optional<uint32_t> tip_height =
      job.height && *job.height > 0 ? std::optional<uint32_t>(*job.height - 1) : std::nullopt;
  Chain& c = chain_for(ps.rules.chain.empty() && !ps.chain.empty() && !tip_height &&
                               !find_tip(chains_[ps.chain], job.prevhash)
                           ? ps.chain  // no evidence either way: it stays where it was
                           : ps.rules.chain,
                       job.prevhash, tip_height, self);
  const bool same_chain = ps.chain == c.name;
  const Hash256 previous = ps.prevhash;
  Tip& t = observe_tip(c, job.prevhash, tip_height, same_chain && ps.has_tip ? &previous : nullptr, "pool " + self,
                       now, false);
  if (!ps.has_tip || previous != job.prevhash) ps.moved = false;
  ps.chain = c.name;
  ps.has_tip = true;
  ps.prevhash = job.prevhash;
  ps.height = t.height;

  // The same previous block makes the same nbits, whoever sends the job.
  bool nbits_bad = false;
  if (t.nbits == 0) {
    t.nbits = job.nbits;
    t.nbits_from = self;
  } else if (t.nbits != job.nbits) {
    nbits_bad = true;
    emit(pool, IntegrityCheck::kNbits, IntegrityAction::kFlag,
         {{"nbits", hex_u32_string(job.nbits)}, {"expected", hex_u32_string(t.nbits)}, {"from_pool", t.nbits_from},
          {"prevhash", prevhash_display_hex(job.prevhash)}});
  }
  ps.flags = nbits_bad ? ps.flags | 1u << unsigned(IntegrityCheck::kNbits)
                       : ps.flags & ~(1u << unsigned(IntegrityCheck::kNbits));
  evaluate(pool, now);
  return true;
}

void IntegrityMonitor::check_coinbase(size_t pool, const JobFacts& job, bool& refuse) {
  PoolState& ps = pools_[pool];
  const bool ruled = !ps.rules.required_outputs.empty() || ps.rules.lock_outputs;
  const uint32_t malformed_bit = 1u << unsigned(IntegrityCheck::kCoinbaseMalformed);
  if (!job.coinbase_ok) {
    // Unparseable: with rules it cannot be checked, so it is refused.
    emit(pool, IntegrityCheck::kCoinbaseMalformed, ruled ? IntegrityAction::kRefuseJob : IntegrityAction::kFlag,
         {{"error", job.coinbase_error}});
    ps.flags |= malformed_bit;
    refuse = ruled;
    return;
  }
  ps.flags &= ~malformed_bit;
  for (const auto& rule : ps.rules.required_outputs) {
    // Not a structured binding: clang 14 cannot capture one in a lambda.
    const auto& script = rule.first;
    const auto& label = rule.second;
    const bool paid = std::any_of(job.outputs.begin(), job.outputs.end(), [&](const CoinbaseOutput& o) {
      return o.value > 0 && o.script_pubkey == script;
    });
    if (paid) continue;
    ps.flags |= 1u << unsigned(IntegrityCheck::kCoinbasePayout);
    emit(pool, IntegrityCheck::kCoinbasePayout, IntegrityAction::kRefuseJob,
         {{"missing", label}, {"missing_script", describe_script(script)}, {"outputs", describe_outputs(job.outputs)}});
    refuse = true;
    return;
  }
  ps.flags &= ~(1u << unsigned(IntegrityCheck::kCoinbasePayout));
  if (ps.rules.lock_outputs) {
    std::vector<Bytes> now_scripts = payout_scripts(job.outputs);
    if (!ps.locked_scripts) {
      ps.locked_scripts = std::move(now_scripts);
    } else if (*ps.locked_scripts != now_scripts) {
      ps.flags |= 1u << unsigned(IntegrityCheck::kCoinbaseChanged);
      emit(pool, IntegrityCheck::kCoinbaseChanged, IntegrityAction::kRefuseJob,
           {{"expected", describe_scripts(*ps.locked_scripts)}, {"outputs", describe_outputs(job.outputs)}});
      refuse = true;
      return;
    }
    ps.flags &= ~(1u << unsigned(IntegrityCheck::kCoinbaseChanged));
  }
}

bool IntegrityMonitor::on_set_extranonce(size_t pool, size_t extranonce1_size, uint32_t extranonce2_size) {
  PoolState& ps = pools_[pool];
  std::string why;
  // A small extranonce2 is a smaller space, not a broken one (the gateway
  // re-splits it, as at subscribe); one that cannot fit the coinbase input
  // script makes every block of the pool invalid.
  if (ps.extranonce_room && extranonce1_size + extranonce2_size > *ps.extranonce_room) {
    why = "the extranonce would push the coinbase input script past 100 bytes";
  }
  if (why.empty()) return true;
  emit(pool, IntegrityCheck::kExtranonce, IntegrityAction::kRefuseJob,
       {{"reason", why}, {"extranonce1_size", std::to_string(extranonce1_size)},
        {"extranonce2_size", std::to_string(extranonce2_size)},
        {"room", ps.extranonce_room ? std::to_string(*ps.extranonce_room) : "unknown"}});
  return false;
}

void IntegrityMonitor::on_pool_down(size_t pool) {
  PoolState& ps = pools_[pool];
  ps.has_tip = false;
  set_flag(pool, IntegrityCheck::kStaleTip, false, {{"reason", "pool down"}});
  set_flag(pool, IntegrityCheck::kAhead, false, {{"reason", "pool down"}});
}

void IntegrityMonitor::on_node_tip(const Hash256& best_display, uint32_t height, double now) {
  const Hash256 tip = prevhash_from_display(best_display);
  if (node_height_ && *node_height_ == height && node_tip_ == tip) return;
  Chain& c = chain_for(opts_.node_chain.empty() && !node_chain_.empty() ? node_chain_ : opts_.node_chain, tip,
                       height, "node");
  node_chain_ = c.name;
  node_height_ = height;
  node_tip_ = tip;
  observe_tip(c, tip, height, nullptr, "node", now, true);
}

void IntegrityMonitor::on_tick(double now) {
  for (size_t i = 0; i < pools_.size(); ++i) evaluate(i, now);
}

void IntegrityMonitor::evaluate(size_t pool, double now) {
  PoolState& ps = pools_[pool];
  if (!ps.has_tip) return;
  Chain& c = chains_[ps.chain];
  const Tip* t = find_tip(c, ps.prevhash);
  const std::string display = prevhash_display_hex(ps.prevhash);
  const std::string height = ps.height ? std::to_string(*ps.height) : "unknown";

  // Far ahead of every other source of the chain.
  std::optional<uint32_t> others;
  std::string highest;
  for (const PoolState& o : pools_)
    if (&o != &ps && o.has_tip && o.chain == ps.chain && o.height && (!others || *o.height > *others)) {
      others = *o.height;
      highest = o.rules.name;
    }
  if (node_height_ && node_chain_ == ps.chain && (!others || *node_height_ > *others)) {
    others = *node_height_;
    highest = "node";
  }
  const bool ahead = ps.height && others && *ps.height > *others + opts_.ahead_blocks;
  set_flag(pool, IntegrityCheck::kAhead, ahead,
           ahead ? Evidence{{"prevhash", display}, {"height", height}, {"highest_other", std::to_string(*others)},
                            {"highest_source", highest}, {"ahead_blocks", std::to_string(opts_.ahead_blocks)}}
                 : Evidence{{"prevhash", display}, {"height", height}});

  const double lag = t && t->superseded ? now - t->superseded_at : 0;
  const bool stale = lag >= opts_.stale_grace_seconds && t;
  Evidence ev{{"chain", ps.chain}, {"prevhash", display}, {"height", height}, {"lag_seconds", num(lag)}};
  if (t && t->superseded) {
    ev.emplace_back("newer_prevhash", prevhash_display_hex(t->newer_hash));
    ev.emplace_back("newer_height", t->newer_height ? std::to_string(*t->newer_height) : "unknown");
    ev.emplace_back("moved_on", t->superseded_by);
    if (node_height_ && node_chain_ == ps.chain) {
      ev.emplace_back("node_height", std::to_string(*node_height_));
      if (ps.height) ev.emplace_back("lag_blocks", std::to_string(int64_t(*node_height_) - int64_t(*ps.height)));
    } else if (c.best_height && ps.height) {
      ev.emplace_back("lag_blocks", std::to_string(int64_t(*c.best_height) - int64_t(*ps.height)));
    }
  }
  set_flag(pool, IntegrityCheck::kStaleTip, stale, ev);
  if (stale && opts_.stale_move && lag >= opts_.stale_move_seconds && !ps.moved) {
    ps.moved = true;
    emit(pool, IntegrityCheck::kStaleTip, IntegrityAction::kFailPool, std::move(ev));
  }
}

PoolIntegrityView IntegrityMonitor::view(size_t pool, double now) const {
  const PoolState& ps = pools_[pool];
  PoolIntegrityView v;
  v.chain = ps.chain;
  v.has_tip = ps.has_tip;
  v.prevhash = ps.prevhash;
  v.flags = ps.flags;
  v.events = ps.events;
  if (!ps.has_tip) return v;
  if (ps.height) v.height = *ps.height + 1;
  auto cit = chains_.find(ps.chain);
  if (cit == chains_.end()) return v;
  const Tip* t = find_tip(cit->second, ps.prevhash);
  if (t && t->superseded) v.lag_seconds = now - t->superseded_at;
  std::optional<uint32_t> best = cit->second.best_height;
  if (node_height_ && node_chain_ == ps.chain) best = node_height_;
  if (best && ps.height) v.lag_blocks = std::max<int64_t>(0, int64_t(*best) - int64_t(*ps.height));
  return v;
}

}  // namespace hashgate
