// `fleettwin catalog check|show`: validate a signal catalog, compare it with the one it replaces, print one.
#include <cstdio>
#include <map>
#include <memory>

#include "catalog/catalog.h"
#include "catalog/compatibility.h"
#include "cli/command_line.h"
#include "cli/commands.h"

namespace fleettwin::cli {

namespace {

void print_summary(const catalog::Catalog& c) {
  std::map<std::string, int> by_part;
  for (const auto& s : c.signals()) ++by_part[std::string(catalog::to_string(s.part))];
  std::printf("catalog %s: %zu signals (", c.label().c_str(), c.size());
  const char* sep = "";
  for (const auto& [part, n] : by_part) {
    std::printf("%s%s %d", sep, part.c_str(), n);
    sep = ", ";
  }
  std::printf(")\n");
}

}  // namespace

void add_catalog_commands(CommandLine& cl) {
  auto* cmd = cl.app().add_subcommand("catalog", "Signal catalogs (docs/catalogs.md)");
  cmd->require_subcommand(1);

  auto* check = cmd->add_subcommand(
      "check", "Validate a catalog file; with --against, list what changed and whether it is compatible");
  struct CheckFlags {
    std::string file, against;
  };
  auto flags = std::make_shared<CheckFlags>();
  check->add_option("file", flags->file, "Catalog to check (YAML)")->required()->check(CLI::ExistingFile);
  check->add_option("--against", flags->against, "The catalog it replaces (YAML, or 'builtin')");
  // Exit codes: 0 valid (and compatible), 1 valid but incompatible with --against, 2 not a valid catalog.
  cl.add(
      check,
      [flags](Config&, std::atomic<int>&) {
        const auto& [file, against] = *flags;
        try {
          const auto next = catalog::load_file(file);
          print_summary(next);
          if (against.empty()) return 0;
          const auto older = against == "builtin" ? *catalog::builtin() : catalog::load_file(against);
          std::printf("against %s:\n", older.label().c_str());
          const auto result = catalog::compare(older, next);
          std::printf("%s", result.report().c_str());
          return result.compatible() ? 0 : 1;
        } catch (const catalog::CatalogError& e) {
          std::fprintf(stderr, "error: %s\n", e.what());
          return 2;
        }
      },
      false);

  auto* show =
      cmd->add_subcommand("show", "Print the catalog in use (--catalog, or the built-in one) as YAML");
  cl.add(
      show,
      [](Config& config, std::atomic<int>&) {
        try {
          std::printf("%s",
                      catalog::to_yaml(*catalog::load_or_builtin(config.get(keys::catalog_file))).c_str());
          return 0;
        } catch (const catalog::CatalogError& e) {
          std::fprintf(stderr, "error: %s\n", e.what());
          return 2;
        }
      },
      false);
}

}  // namespace fleettwin::cli
