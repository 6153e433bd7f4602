#pragma once

#include <atomic>
#include <string>

#include "cli/command_line.h"

namespace fleettwin::cli {

// Every command group registers its subcommands with the command line the same way: one function per
// group, in its own file. main() calls them in the order `fleettwin --help` lists them.

/// `fleettwin up` (cmd_up.cc).
void add_up_commands(CommandLine& cl);
/// One command per stage of the stage registry (`process`, `score`, `twin`, `sink`) and `twin get|list`
/// (cmd_roles.cc).
void add_role_commands(CommandLine& cl);
/// `fleettwin sim` (log or `--mqtt`) and `sim credentials` (cmd_sim.cc).
void add_sim_commands(CommandLine& cl);
/// `fleettwin bridge` (cmd_bridge.cc).
void add_bridge_commands(CommandLine& cl);
/// `fleettwin registry` (cmd_registry.cc).
void add_registry_commands(CommandLine& cl);
/// `fleettwin config docs` (cmd_config.cc).
void add_config_commands(CommandLine& cl);
/// `fleettwin catalog check|show` (cmd_catalog.cc).
void add_catalog_commands(CommandLine& cl);
/// `fleettwin api` (cmd_api.cc).
void add_api_commands(CommandLine& cl);
/// `fleettwin train` and `fleettwin eval` (cmd_ml.cc).
void add_ml_commands(CommandLine& cl);
/// `fleettwin query summary|top|hourly|alerts|twins` (cmd_store.cc).
void add_store_commands(CommandLine& cl);
/// `fleettwin bench embedded|kafka|mqtt` (bench/scenarios/bench_commands.cc).
void add_bench_commands(CommandLine& cl);
/// `fleettwin bench sink` (bench/scenarios/bench_sink.cc).
void add_bench_sink_commands(CommandLine& cl);
/// `fleettwin bench score` (bench/scenarios/bench_score.cc).
void add_bench_score_commands(CommandLine& cl);

/// The flags every one-role process takes: --kafka and friends, --group, --data-dir.
void add_role_flags(Flags& flags, CLI::App* cmd);
/// Runs `role` alone on Kafka until stopped, then prints its closing line.
int run_role(const std::string& role, Config& config, std::atomic<int>& stop_signals);

}  // namespace fleettwin::cli
