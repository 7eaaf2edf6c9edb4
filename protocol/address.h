// Payout addresses to output scripts, for the coinbase rules an operator
// writes (integrity.require_outputs): base58check P2PKH/P2SH of Bitcoin,
// Litecoin and Dogecoin (main, test and regtest prefixes), bech32/bech32m
// segwit addresses of any human-readable part, or "script:<hex>".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "hashing/bytes.h"

namespace hashgate {

// The scriptPubKey an address pays, or nullopt with `error` saying why.
std::optional<Bytes> address_script(std::string_view text, std::string& error);

}  // namespace hashgate
