#include "config/keys.h"

#include <sstream>
#include <utility>

namespace fleettwin::config {

namespace {

// Filled by the key constructors. The keys are inline variables of keys.h, so each is built once, and in
// the order they are declared there (C++ orders inline variables defined in the same order in every
// translation unit); a translation unit that includes keys.h sees them all built before its own statics.
std::vector<const KeySpec*>& registry() {
  static std::vector<const KeySpec*> keys;
  return keys;
}

// Defaults are documented as text; doubles print as the table always printed them ("0.02", "0.995").
std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

KeySpec::KeySpec(std::string name, ConfigType type, std::string default_text, std::optional<double> min,
                 std::optional<double> max, std::string description)
    : _name(std::move(name)),
      _type(type),
      _default_text(std::move(default_text)),
      _min(min),
      _max(max),
      _description(std::move(description)) {
  registry().push_back(this);
}

IntKey::IntKey(std::string name, int64_t default_value, int64_t min, int64_t max, std::string description)
    : KeySpec(std::move(name), ConfigType::kInt, std::to_string(default_value), static_cast<double>(min),
              static_cast<double>(max), std::move(description)) {}

DoubleKey::DoubleKey(std::string name, double default_value, double min, double max, std::string description)
    : KeySpec(std::move(name), ConfigType::kDouble, number_text(default_value), min, max,
              std::move(description)) {}

BoolKey::BoolKey(std::string name, bool default_value, std::string description)
    : KeySpec(std::move(name), ConfigType::kBool, default_value ? "true" : "false", std::nullopt,
              std::nullopt, std::move(description)) {}

StringKey::StringKey(std::string name, std::string default_value, std::string description)
    : KeySpec(std::move(name), ConfigType::kString, std::move(default_value), std::nullopt, std::nullopt,
              std::move(description)) {}

DurationKey::DurationKey(std::string name, std::string default_text, int64_t min_ms,
                         std::optional<int64_t> max_ms, std::string description)
    : KeySpec(std::move(name), ConfigType::kDuration, std::move(default_text), static_cast<double>(min_ms),
              max_ms ? std::optional<double>(static_cast<double>(*max_ms)) : std::nullopt,
              std::move(description)) {}

const std::vector<const KeySpec*>& all_keys() { return registry(); }

const KeySpec* find_key(std::string_view name) {
  for (const KeySpec* k : registry())
    if (k->name() == name) return k;
  return nullptr;
}

}  // namespace fleettwin::config
