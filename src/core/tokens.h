#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::core {

/// What a token may do. Ordered: each role can do everything the ones before it can.
///   viewer: read everything; operator: also send commands (PATCH desired), acknowledge alerts and register
///   schemas; admin: also manage models and change the registry's compatibility levels.
/// Shared by the REST API (api.tokens) and the schema registry (registry.tokens): one token format, one
/// parser, one constant-time comparison.
enum class Role : uint8_t { kViewer = 0, kOperator = 1, kAdmin = 2 };
std::string_view to_string(Role role);
std::optional<Role> role_from_string(std::string_view text);

/// A malformed token list (config keys api.tokens, registry.tokens).
class TokenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Tokens and their roles. Built once at start-up, then read by every HTTP worker thread (const, so no
/// lock).
class TokenTable {
 public:
  /// Parses "role:token,role:token,..." (whitespace around entries ignored). Throws TokenError naming the
  /// bad entry: unknown role, empty token, a token shorter than 8 characters, or a token given twice.
  static TokenTable parse(std::string_view text);

  void add(Role role, std::string token);
  /// The role of `token`, or nullopt. Compares in constant time per entry so response timing does not
  /// tell how much of a guessed token was right.
  std::optional<Role> role_of(std::string_view token) const;
  bool empty() const { return _entries.empty(); }
  std::size_t size() const { return _entries.size(); }

 private:
  std::vector<std::pair<std::string, Role>> _entries;
};

/// The token of an `Authorization: Bearer T` header value; empty for any other value.
std::string_view bearer_token(std::string_view authorization);

}  // namespace fleettwin::core
