#include "registry/protocol.h"

#include "core/enum_names.h"

namespace fleettwin::registry {

namespace {

constexpr core::EnumName<CompatibilityLevel> kLevelNames[] = {
    {CompatibilityLevel::kNone, "NONE"},
    {CompatibilityLevel::kBackward, "BACKWARD"},
    {CompatibilityLevel::kBackwardTransitive, "BACKWARD_TRANSITIVE"},
    {CompatibilityLevel::kForward, "FORWARD"},
    {CompatibilityLevel::kForwardTransitive, "FORWARD_TRANSITIVE"},
    {CompatibilityLevel::kFull, "FULL"},
    {CompatibilityLevel::kFullTransitive, "FULL_TRANSITIVE"}};

std::string describe(int status, int error_code, const std::string& message) {
  std::string out = "schema registry: ";
  out += status == 0 ? std::string("no response") : "HTTP " + std::to_string(status);
  if (error_code != 0) out += " (error_code " + std::to_string(error_code) + ")";
  out += ": ";
  out += message;
  return out;
}

}  // namespace

std::string subject_for_topic(std::string_view topic) { return std::string(topic) + "-value"; }

SchemaRegistryError::SchemaRegistryError(int status, int error_code, std::string message)
    : std::runtime_error(describe(status, error_code, message)),
      _status(status),
      _error_code(error_code),
      _message(std::move(message)) {}

std::string_view to_string(CompatibilityLevel level) { return core::name_of(kLevelNames, level, "NONE"); }

std::optional<CompatibilityLevel> parse_compatibility_level(std::string_view text) {
  return core::parse(kLevelNames, text);
}

}  // namespace fleettwin::registry
