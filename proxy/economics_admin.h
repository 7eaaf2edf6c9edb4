// The economics in the admin API, metrics and dashboard: figures a reader
// derives from a snapshot (EconomicsSnapshot plus the worker and pool
// rates), so the loop computes nothing per worker.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "proxy/snapshot.h"

namespace hashgate {

// Each appends ,"economics":{...} (or nothing when economics is off).
void append_worker_economics(std::string& o, const Snapshot& s, const WorkerSnapshot& w);
void append_pool_economics(std::string& o, const Snapshot& s, const PoolSnapshot& p);
void append_status_economics(std::string& o, const Snapshot& s);
// GET /api/v1/economics: everything at once.
std::string economics_json(const Snapshot& s);
void append_economics_metrics(std::vector<prometheus::MetricFamily>& fams, const Snapshot& s);

}  // namespace hashgate
