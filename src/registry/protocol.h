#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fleettwin::registry {

/// Content type of Confluent Schema Registry requests and responses (plain application/json is accepted).
inline constexpr std::string_view kSchemaRegistryContentType = "application/vnd.schemaregistry.v1+json";

/// Confluent's TopicNameStrategy: the subject under which a topic's record values are registered.
std::string subject_for_topic(std::string_view topic);

/// Error codes of the Confluent REST API that the client and the embedded registry use.
namespace registry_errors {
inline constexpr int kUnauthorized = 40101;
inline constexpr int kForbidden = 40301;
inline constexpr int kSubjectNotFound = 40401;
inline constexpr int kVersionNotFound = 40402;
inline constexpr int kSchemaNotFound = 40403;
inline constexpr int kSubjectConfigNotFound = 40408;
inline constexpr int kIncompatibleSchema = 409;
inline constexpr int kInvalidSchema = 42201;
inline constexpr int kInvalidVersion = 42202;
inline constexpr int kInvalidCompatibilityLevel = 42203;
inline constexpr int kStoreError = 50001;
}  // namespace registry_errors

/// A failed schema registry operation, thrown by SchemaRegistryClient and SchemaStore: the HTTP status
/// (0 when there was no response: refused connection, timeout), the registry's error_code (Confluent
/// numbering, see registry_errors; 0 when the response carried none) and its message. what() holds all three.
class SchemaRegistryError : public std::runtime_error {
 public:
  SchemaRegistryError(int status, int error_code, std::string message);

  int status() const { return _status; }
  int error_code() const { return _error_code; }
  const std::string& message() const { return _message; }

 private:
  int _status;
  int _error_code;
  std::string _message;
};

/// Confluent compatibility levels. BACKWARD: the new schema reads data written with the latest one;
/// FORWARD: the latest reads the new; FULL: both; *_TRANSITIVE: against every version, not only the latest.
enum class CompatibilityLevel : uint8_t {
  kNone,
  kBackward,
  kBackwardTransitive,
  kForward,
  kForwardTransitive,
  kFull,
  kFullTransitive,
};

/// "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE".
std::string_view to_string(CompatibilityLevel level);
/// The inverse of to_string (case-sensitive, as Confluent's); nullopt for anything else.
std::optional<CompatibilityLevel> parse_compatibility_level(std::string_view text);

}  // namespace fleettwin::registry
