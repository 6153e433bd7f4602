#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "config/keys.h"

namespace fleettwin::config {

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
/// value is validated against its key when set. Built on the main thread, then read-only (reads from any
/// thread, unless `record_reads` is on).
class Config {
 public:
  Config();

  /// Loads a YAML file whose nesting mirrors the dotted names. Unknown keys are errors (typos must not
  /// silently fall back to defaults).
  void load_yaml(const std::string& path);
  /// The same from YAML text; `origin` names the source in errors.
  void load_yaml_text(const std::string& text, const std::string& origin);
  /// Reads FLEETTWIN_<KEY> variables (dots and dashes as underscores, upper case).
  void load_env();
  /// Sets one key from text, validating it; `origin` names the source in errors ("--cars", "config.yaml").
  void set(const KeySpec& key, const std::string& text, const std::string& origin);
  /// Sets a key named by text from outside the program (YAML, environment, `--kafka-set`): an unknown name
  /// is an error, except `kafka.<property>`, which is kept for librdkafka (see `passthrough`).
  void set_named(const std::string& name, const std::string& text, const std::string& origin);

  int64_t get(const IntKey& key) const;
  double get(const DoubleKey& key) const;
  bool get(const BoolKey& key) const;
  std::string get(const StringKey& key) const;
  std::chrono::milliseconds get(const DurationKey& key) const;
  /// The value as it was given ("10s", "10000"), to print it or hand it on to a child process's flags.
  const std::string& text(const KeySpec& key) const;

  /// While `sink` is set, every `get` and `text` adds the key's name to it, so a test can see which keys
  /// a piece of code reads. Null (the default) records nothing; the sink is not synchronized, so record
  /// on one thread only.
  void record_reads(std::set<std::string>* sink) { _reads = sink; }

  /// Markdown reference of every key (docs/configuration.md).
  static std::string docs_markdown();

  /// Keys under a pass-through prefix (`kafka.` + any librdkafka property), as given.
  const std::map<std::string, std::string>& passthrough() const { return _passthrough; }

 private:
  const std::string& raw(const KeySpec& key) const;
  std::map<std::string, std::string> _values;
  std::map<std::string, std::string> _passthrough;
  std::set<std::string>* _reads = nullptr;
};

}  // namespace fleettwin::config
