#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/keys.h"

namespace fleettwin::cli {

using config::Config;
namespace keys = config::keys;

/// Binds command-line flags to configuration keys. A flag is applied only when given, so the YAML file and
/// the environment are not overridden by defaults. Main thread, before the command runs.
class Flags {
 public:
  /// `flag VALUE` sets `key`.
  void add(CLI::App* cmd, const std::string& flag, const config::KeySpec& key, const std::string& help);
  /// `flag` alone sets the boolean `key` to true.
  void add_switch(CLI::App* cmd, const std::string& flag, const config::BoolKey& key,
                  const std::string& help);
  /// `--kafka-set KEY=VALUE` (repeatable): any librdkafka property, as `kafka.KEY`.
  void add_kafka_set(CLI::App* cmd);
  /// Applies the flags that were given, in the order they were declared.
  void apply(Config& config) const;

 private:
  struct Binding {
    std::string flag;
    const config::KeySpec* key;
    std::string value;
    CLI::Option* option = nullptr;
    bool is_switch = false;
  };
  std::deque<Binding> _bindings;  // deque: CLI11 keeps pointers to `value`
  std::deque<std::vector<std::string>> _kafka_sets;
};

/// The flags of the simulator, shared by `up`, `sim` and the benchmarks.
void add_sim_flags(Flags& flags, CLI::App* cmd);
/// --kafka, --kafka-set, --schema-registry, --partitions: where a distributed role finds its services.
void add_distributed_flags(Flags& flags, CLI::App* cmd);
/// --qos, --mqtt-version, --credentials: how cars and bridge speak MQTT.
void add_mqtt_flags(Flags& flags, CLI::App* cmd);
/// `up`'s edge-site flags: --uplink, --site, --uplink-registry, --uplink-disk-budget.
void add_uplink_flags(Flags& flags, CLI::App* cmd);
/// --mongo, --data-dir: the store a command reads (MongoDB/FerretDB, or SQLite in the data dir).
void add_store_flags(Flags& flags, CLI::App* cmd);

/// What a subcommand does once the command line is parsed: runs with the resolved configuration and the
/// count of stop signals received so far (1: drain and stop; 2 or more: stop now); returns the exit code.
using RunCommand = std::function<int(Config& config, std::atomic<int>& stop_signals)>;

/// The whole command line: the CLI11 application, the flag bindings and every registered subcommand. Each
/// command group registers itself with add() from its own file (cli/cmd_*.cc, bench/scenarios); run() parses,
/// resolves the configuration (defaults < YAML < environment < flags), sets up logging, installs the signal
/// handlers once and runs the subcommand that was given. Main thread only.
class CommandLine {
 public:
  CommandLine();
  CLI::App& app() { return _app; }
  Flags& flags() { return _flags; }
  /// Registers what runs when `cmd` is given. `drains` says the command stops cleanly on SIGINT/SIGTERM
  /// (it watches the stop counter); the others keep the default action, so Ctrl-C ends them at once.
  void add(CLI::App* cmd, RunCommand run, bool drains = true);
  /// The subcommand registered under `path` (e.g. {"bench"}), for groups that add to another's command;
  /// null when there is none.
  CLI::App* find(const std::vector<std::string>& path);
  /// Parses argv and runs the chosen subcommand: its exit code; 2 for a usage or configuration error.
  int run(int argc, char** argv);

 private:
  struct Registered {
    CLI::App* cmd;
    RunCommand run;
    bool drains;
  };
  CLI::App _app;
  Flags _flags;
  std::string _config_file;
  std::vector<Registered> _commands;
};

}  // namespace fleettwin::cli
