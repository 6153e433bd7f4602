// `fleettwin config docs`: the configuration reference, generated from the key declarations.
#include <cstdio>

#include "cli/command_line.h"
#include "cli/commands.h"

namespace fleettwin::cli {

void add_config_commands(CommandLine& cl) {
  auto* cmd = cl.app().add_subcommand("config", "Configuration reference");
  cmd->require_subcommand(1);
  auto* docs = cmd->add_subcommand("docs", "Print docs/configuration.md (every key, type, default)");
  cl.add(
      docs,
      [](Config&, std::atomic<int>&) {
        std::printf("%s", Config::docs_markdown().c_str());
        return 0;
      },
      false);
}

}  // namespace fleettwin::cli
