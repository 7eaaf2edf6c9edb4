// Loads the JSON vectors copied unchanged from the shared set.
#pragma once

#include <simdjson.h>

#include <string>

namespace hashgate::test {

inline std::string vector_path(const char* name) { return std::string(HASHGATE_VECTORS_DIR) + "/" + name; }

}  // namespace hashgate::test
