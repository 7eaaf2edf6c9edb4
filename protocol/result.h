// Errors on the data path are values. A Result<T> holds a T or an Error
// with a Stratum error code and a message naming the problem.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace hashgate {

// Stratum's error codes, plus the JSON-RPC ones for malformed requests.
enum class ErrorCode : int {
  kOther = 20,            // anything else (ntime out of range, bad version bits, bad params)
  kStaleJob = 21,         // job not found: unknown, replaced by a clean job, or another pool's
  kDuplicateShare = 22,   // the same share was already submitted
  kLowDifficulty = 23,    // hash above the session target
  kUnauthorized = 24,     // worker not authorized on this session
  kNotSubscribed = 25,    // mining.subscribe has not completed
  kParseError = -32700,   // not JSON
  kInvalidRequest = -32600,  // JSON but not a JSON-RPC request
  kMethodNotFound = -32601,  // unknown method
  kInvalidParams = -32602,   // wrong number or type of parameters
};

struct Error {
  ErrorCode code = ErrorCode::kOther;
  std::string message;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Error error) : error_(std::move(error)) {}
  explicit operator bool() const { return value_.has_value(); }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  const Error& error() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_;
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace hashgate
