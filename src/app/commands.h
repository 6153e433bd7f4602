#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <vector>

#include "config/config.h"

namespace fleettwin::app {

/// A subcommand defined in its own file (cmd_<area>.cc): main.cc parses the command line, resolves the
/// configuration and, when `cmd` was given, calls `run` with it and the stop-signal counter; its result is
/// the exit code.
struct Subcommand {
  CLI::App* cmd = nullptr;
  std::function<int(config::Config& config, std::atomic<int>& stop_signals)> run;
};

/// `fleettwin api --listen ADDR (--data-dir DIR | --mongo URI) [--kafka BROKERS]` (cmd_api.cc).
void add_api_commands(CLI::App& app, std::vector<Subcommand>& out);
/// `fleettwin train` and `fleettwin eval` (cmd_ml.cc).
void add_ml_commands(CLI::App& app, std::vector<Subcommand>& out);
/// `fleettwin query summary|top|hourly|alerts|twins [--mongo URI | --data-dir DIR]` (cmd_store.cc).
void add_store_commands(CLI::App& app, std::vector<Subcommand>& out);
/// `fleettwin bench sink --kafka B --schema-registry URL --mongo URI` (cmd_bench_sink.cc).
void add_bench_sink_commands(CLI::App& app, std::vector<Subcommand>& out);
/// `fleettwin bench score [--kafka B] [--model FILE] [--events N]` (cmd_bench_score.cc).
void add_bench_score_commands(CLI::App& app, std::vector<Subcommand>& out);

}  // namespace fleettwin::app
