#include "proxy/admin_ledger.h"

#include <cstdio>

#include "proxy/log.h"

namespace hashgate {

bool ledger_totals(const Snapshot& s, std::map<std::string, LedgerCounts>& out) {
  if (!s.ledger_reader) return false;
  std::string error;
  if (s.ledger_reader->totals(out, error)) return true;
  log::warn("ledger_read_failed").kv("what", "worker totals").kv("error", error);
  return false;
}

void append_lifetime(std::string& o, const LedgerCounts& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                ",\"lifetime\":{\"accepted\":%llu,\"accepted_difficulty\":%.17g,\"rejected\":%llu,"
                "\"rejected_stale\":%llu,\"rejected_duplicate\":%llu,\"rejected_low_difficulty\":%llu,"
                "\"rejected_other\":%llu,\"forwarded\":%llu,\"pool_accepted\":%llu,\"pool_rejected\":%llu,"
                "\"blocks\":%llu}",
                (unsigned long long)c.accepted, c.accepted_difficulty, (unsigned long long)c.rejected(),
                (unsigned long long)c.rejected_stale, (unsigned long long)c.rejected_duplicate,
                (unsigned long long)c.rejected_low_difficulty, (unsigned long long)c.rejected_other,
                (unsigned long long)c.forwarded, (unsigned long long)c.pool_accepted,
                (unsigned long long)c.pool_rejected, (unsigned long long)c.blocks);
  o += buf;
}

}  // namespace hashgate
