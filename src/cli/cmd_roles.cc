// One role per process (distributed mode): a command for every stage of the stage registry, with the same
// flags, and `twin get|list` to read twins from a store.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <utility>

#include "app/pipeline.h"
#include "app/store_factory.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "codec/json.h"
#include "stages/registry.h"
#include "store/twin_store.h"

namespace fleettwin::cli {

namespace {

/// One line per twin; speed is the catalog's signal called (or aliased) "speed", blank when it has none.
std::string twin_row(const core::Twin& t, const catalog::Catalog& catalog) {
  const auto speed = catalog.find("speed");
  const double v = speed && *speed < t.reported.values.size() ? t.reported.values[*speed] : core::kAbsent;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-12s %-8s %-7s seq %-8lld speed %6.1f m/s  msgs %lld", t.id.c_str(),
                std::string(core::to_string(t.health.status)).c_str(), t.online ? "online" : "offline",
                (long long)t.reported.seq, v, (long long)t.messages);
  return buf;
}

/// Adds `cmd`, with the store flags, as a read of the configured store: `read(store, catalog, config)`.
void add_store_read(CommandLine& cl, CLI::App* cmd,
                    std::function<int(store::TwinStore&, const catalog::Catalog&, const Config&)> read) {
  add_store_flags(cl.flags(), cmd);
  cl.add(
      cmd,
      [read = std::move(read)](Config& config, std::atomic<int>&) {
        const auto catalog = app::configured_catalog(config);
        auto store = app::open_existing_store(config, catalog);
        return read(*store, *catalog, config);
      },
      false);
}

void add_twin_reads(CommandLine& cl, CLI::App* twin) {
  twin->require_subcommand(0, 1);
  auto* get = twin->add_subcommand("get", "Print one car's twin as JSON");
  auto car = std::make_shared<std::string>();
  get->add_option("car", *car, "Car id")->required();
  add_store_read(cl, get,
                 [car](store::TwinStore& store, const catalog::Catalog& catalog, const Config& config) {
                   auto t = store.get_twin(*car);
                   if (!t) {
                     std::fprintf(stderr, "fleettwin: no twin for car '%s' in %s\n", car->c_str(),
                                  config.get(keys::data_dir).c_str());
                     return 1;
                   }
                   std::printf("%s\n", codec::twin_to_json(*t, catalog).c_str());
                   return 0;
                 });

  auto* list = twin->add_subcommand("list", "List twins");
  struct ListFlags {
    std::string status;
    int64_t limit = 20;
  };
  auto lf = std::make_shared<ListFlags>();
  list->add_option("--status", lf->status, "ok|warning|anomaly|unknown")
      ->check(CLI::IsMember({"ok", "warning", "anomaly", "unknown"}));
  list->add_option("--limit", lf->limit, "Rows at most")->check(CLI::Range(1, 1000000));
  add_store_read(cl, list, [lf](store::TwinStore& store, const catalog::Catalog& catalog, const Config&) {
    store::TwinQuery q;
    q.limit = lf->limit;
    if (!lf->status.empty()) q.status = core::health_status_from_string(lf->status);
    for (const auto& t : store.list_twins(q)) std::printf("%s\n", twin_row(t, catalog).c_str());
    return 0;
  });
}

}  // namespace

void add_role_flags(Flags& flags, CLI::App* cmd) {
  add_distributed_flags(flags, cmd);
  flags.add(cmd, "--group", keys::group, "Consumer group (copies in one group share the partitions)");
  flags.add(cmd, "--data-dir", keys::data_dir, "Store and state directory");
  flags.add(cmd, "--metrics-listen", keys::metrics_listen,
            "Serve /metrics, /healthz and /readyz on HOST:PORT (default: none)");
  flags.add_switch(cmd, "--sites", keys::sites,
                   "Central: also read every edge site's topics (<site>.fleet.telemetry, ...)");
}

int run_role(const std::string& role, Config& config, std::atomic<int>& stop_signals) {
  if (config.get(keys::kafka_brokers).empty())
    throw config::ConfigError(
        "`fleettwin " + role +
        "` runs one role on Kafka: give --kafka BROKERS (or run everything in one process "
        "with `fleettwin up`)");
  spdlog::info("fleettwin {}: Kafka {}, group {}", role, config.get(keys::kafka_brokers),
               config.get(keys::group).empty() ? "fleettwin." + role : config.get(keys::group));
  const app::RunControl control{&stop_signals, 0, true};
  const auto s = app::run_pipeline(config, control, app::Roles::only(role));
  std::fprintf(stderr, "%s stopped: %lld records in, %.0f msg/s, peak RSS %.0f MB\n", role.c_str(),
               (long long)(role == "sim" ? s.published : s.records_in), s.msgs_per_s, s.peak_rss_mb);
  return 0;
}

void add_role_commands(CommandLine& cl) {
  for (const auto& entry : stages::registry()) {
    const auto& d = entry.descriptor();
    auto* cmd = cl.app().add_subcommand(d.name, "Run the " + d.name + " stage: " + d.summary);
    add_role_flags(cl.flags(), cmd);
    for (const auto& f : d.flags) {
      if (f.key->type() == config::ConfigType::kBool)  // a yes/no key is a switch
        cl.flags().add_switch(cmd, f.flag, static_cast<const config::BoolKey&>(*f.key), f.help);
      else
        cl.flags().add(cmd, f.flag, *f.key, f.help);
    }
    const std::string role = d.name;
    cl.add(cmd, [role](Config& config, std::atomic<int>& stop) { return run_role(role, config, stop); });
  }
  // The twin stage's command also reads twins from a store.
  if (auto* twin = cl.find({"twin"})) add_twin_reads(cl, twin);
}

}  // namespace fleettwin::cli
