// Batched proof-of-work hashing with a choice of code path: portable,
// SSE2 (4 lanes), AVX2 (8 lanes), AVX-512 (16 lanes). The best path the CPU
// supports is used unless one is forced (config `hashing.path`, or the
// HASHGATE_HASH_PATH environment variable, which wins, so every path can be
// tested on one machine).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "hashing/header.h"

namespace hashgate {

enum class HashPath { kPortable, kSse2, kAvx2, kAvx512 };

const char* hash_path_name(HashPath p);
std::optional<HashPath> parse_hash_path(std::string_view name);
bool hash_path_supported(HashPath p);
HashPath best_hash_path();
// HASHGATE_HASH_PATH if set (and supported), else `configured` if given and
// supported, else the best. Unsupported requests are refused by returning
// nullopt, so callers can say why.
std::optional<HashPath> select_hash_path(std::optional<HashPath> configured);
size_t hash_path_lanes(HashPath p);

// Hashes k headers (any k from 1 up). A partial last group of lanes is
// filled with copies of the last header and the extra results dropped.
void pow_batch(HashPath path, Algorithm algo, const Header* headers, Hash256* out, size_t k);

// Like pow_batch on `widest`, but the leftover headers after the last full
// group go to the narrowest supported path that holds them (1: portable,
// up to 4: sse2, up to 8: avx2), so one share does not pay for 16 lanes.
void pow_batch_adaptive(HashPath widest, Algorithm algo, const Header* headers, Hash256* out, size_t k);

}  // namespace hashgate
