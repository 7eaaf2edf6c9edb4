// The admin API's read routes (GET /api/v1/...): JSON bodies built from one
// published snapshot on an admin thread. Each route group is one function;
// a new read route adds its function here and one line in AdminServer::handle.
#pragma once

#include <cstddef>
#include <string>

#include "proxy/snapshot.h"

namespace hashgate::admin_api {

std::string status_json(const Snapshot& s);   // /api/v1/status
std::string bans_json(const Snapshot& s);     // /api/v1/bans
std::string pools_json(const Snapshot& s);    // /api/v1/pools (with the node)
std::string boards_json(const Snapshot& s);   // /api/v1/boards
// /api/v1/workers: the `limit` workers with the most trouble first.
std::string workers_json(const Snapshot& s, size_t limit);

}  // namespace hashgate::admin_api
