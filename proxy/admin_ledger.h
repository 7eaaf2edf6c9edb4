// The admin server's reads from the share ledger: lifetime totals per
// worker, GET /api/v1/history and the reconciliation view. They run on the
// admin threads, through the snapshot's LedgerReader (its own connection).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "proxy/http_server.h"
#include "proxy/ledger.h"
#include "proxy/snapshot.h"

namespace hashgate {

// False when the ledger is off or cannot be read (then logged).
bool ledger_totals(const Snapshot& s, std::map<std::string, LedgerCounts>& out);
// Appends ,"lifetime":{...} to a worker's JSON object.
void append_lifetime(std::string& o, const LedgerCounts& c);
// GET /api/v1/history and /api/v1/reconciliation (proxy/ledger_query.h has
// the parameters); nullopt for any other path.
std::optional<HttpResponse> ledger_route(const HttpRequest& r, const Snapshot& s);

}  // namespace hashgate
