#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fleettwin::app {

/// Type of a configuration value.
enum class ConfigType { kInt, kDouble, kBool, kString, kDuration };

/// One configuration key: its type, default, bounds and a one-line description. The table in config.cc is
/// the only place keys are declared; docs/configuration.md is generated from it (`fleettwin config docs`).
struct ConfigKey {
  std::string name;  ///< dotted, e.g. "sim.cars"; env FLEETTWIN_SIM_CARS; YAML sim: {cars: N}
  ConfigType type;
  std::string default_value;
  std::optional<double> min;  ///< for numbers and durations (in ms)
  std::optional<double> max;
  std::string description;
};

/// A bad configuration value: says which key, from where, and why.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses "HOST:PORT" (port 0..65535) into host and port; throws ConfigError naming `what`.
std::pair<std::string, int> parse_host_port(const std::string& text, const std::string& what);

/// Parses "250ms", "10s", "2m", "1h", "1d", or a plain number of seconds, into ms. Throws ConfigError.
int64_t parse_duration_ms(const std::string& text);

/// Resolved configuration: defaults < YAML file < environment (FLEETTWIN_*) < command-line flags. Every
/// value is validated against its key when set. Built on the main thread, then read-only.
class Config {
 public:
  Config();
  static const std::vector<ConfigKey>& keys();
  static const ConfigKey* find_key(const std::string& name);

  /// Loads a YAML file whose nesting mirrors the dotted names. Unknown keys are errors (typos must not
  /// silently fall back to defaults).
  void load_yaml(const std::string& path);
  /// Reads FLEETTWIN_<KEY> variables (dots and dashes as underscores, upper case).
  void load_env();
  /// Sets one key from text, validating it; `origin` names the source in errors ("--cars", "config.yaml").
  void set(const std::string& name, const std::string& value, const std::string& origin);

  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  std::string get_string(const std::string& name) const;
  int64_t get_duration_ms(const std::string& name) const;

  /// Markdown reference of every key (docs/configuration.md).
  static std::string docs_markdown();

  /// Keys under a pass-through prefix (`kafka.` + any librdkafka property), as given.
  const std::map<std::string, std::string>& passthrough() const { return _passthrough; }

 private:
  const std::string& raw(const std::string& name) const;
  std::map<std::string, std::string> _values;
  std::map<std::string, std::string> _passthrough;
};

}  // namespace fleettwin::app
