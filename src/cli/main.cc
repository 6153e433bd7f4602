// fleettwin: the command-line entry point. Every command group registers its subcommands; the command line
// parses, resolves the configuration and runs the one given. A user error ends as one clear line and exit
// code 2.
#include "cli/command_line.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace fleettwin::cli;
  CommandLine cl;
  add_up_commands(cl);
  add_role_commands(cl);
  add_sim_commands(cl);
  add_bridge_commands(cl);
  add_registry_commands(cl);
  add_config_commands(cl);
  add_catalog_commands(cl);
  add_bench_commands(cl);
  add_api_commands(cl);
  add_ml_commands(cl);
  add_store_commands(cl);
  add_bench_sink_commands(cl);
  add_bench_score_commands(cl);
  return cl.run(argc, argv);
}
