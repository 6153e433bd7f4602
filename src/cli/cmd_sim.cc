// `fleettwin sim`: the fleet simulator as a role of its own, writing to Kafka, or its cars on their own MQTT
// connections (`--mqtt`, worker processes for big fleets); `sim credentials` provisions those cars.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/mqtt_front.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "mqtt/certificates.h"
#include "mqtt/credentials.h"
#include "sim/feed/mqtt_fleet.h"

namespace fleettwin::cli {

namespace {

int run_mqtt_cars(Config& config, std::atomic<int>& stop_signals, bool worker_stats) {
  const auto brokers = app::parse_brokers(config.get(keys::mqtt_brokers), "--mqtt");
  auto options = app::mqtt_fleet_options(config, app::fleet_config(config), brokers);
  options.ground_truth_path = config.get(keys::ground_truth);
  const bool tty = isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  int64_t last_published = 0;
  auto report = [&](const sim::MqttFleetStats& s) {
    if (worker_stats) {
      std::printf("%s\n", s.to_line().c_str());
      std::fflush(stdout);
      return;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr,
                 "%s[%.0fs] cars %lld | connected %lld | %lld msg/s | published %lld | acks pending %lld | "
                 "reconnects %lld | unrouted %lld | dropped %lld | commands %lld%s",
                 tty ? "\r\033[K" : "", secs, (long long)s.cars, (long long)s.connected,
                 (long long)(s.published - last_published), (long long)s.published, (long long)s.pending,
                 (long long)s.reconnects, (long long)s.unrouted, (long long)s.dropped, (long long)s.commands,
                 (tty && !s.done) ? "" : "\n");
    last_published = s.published;
  };
  return sim::run_mqtt_fleet_processes(options,
                                       static_cast<std::size_t>(config.get(keys::mqtt_cars_per_process)),
                                       app::sim_worker_args(config, brokers), stop_signals, report);
}

struct CredentialFlags {
  std::size_t cars = 0;
  std::string out;
  bool certs = false;
  std::vector<std::string> server_names = {"localhost", "127.0.0.1"};
};

/// A live progress line ("\r" on a terminal, a line now and then otherwise), with the rate so far.
std::function<void(std::size_t, std::size_t)> progress_line(const char* what) {
  const bool tty = isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  return [tty, started, what, last = std::size_t{0}](std::size_t done, std::size_t total) mutable {
    if (!tty && done != total && done < last + 10000) return;
    last = done;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "%s%s: %zu / %zu cars (%.0f/s)%s", tty ? "\r\033[K" : "", what, done, total,
                 secs > 0 ? static_cast<double>(done) / secs : 0.0, (tty && done != total) ? "" : "\n");
  };
}

int write_credentials_dir(Config& config, const CredentialFlags& f) {
  auto ids = app::fleet_config(config);
  ids.cars = f.cars;
  const auto car_id = [&](std::size_t i) { return sim::car_id(ids, i); };
  const auto acl = std::filesystem::path(FLEETTWIN_SOURCE_DIR) / "deploy" / "mosquitto" / "acl";
  if (f.certs) {
    mqtt::write_certificates(f.out, mqtt::CertificateRequest{.cars = f.cars,
                                                             .car_id = car_id,
                                                             .acl_template = acl.string(),
                                                             .server_names = f.server_names,
                                                             .progress = progress_line("certificates")});
  } else {
    mqtt::write_credentials(f.out, f.cars, car_id, acl.string(), progress_line("credentials"));
  }
  std::printf("%s\n", f.out.c_str());
  std::fprintf(stderr,
               "wrote %s (%s): brokers append its mosquitto.conf to their listener "
               "(scripts/services/mosquitto start --auth %s), cars and bridge take --credentials %s%s\n",
               f.out.c_str(),
               f.certs ? "ca.crt, private/ca.key, server.*, bridge.*, cars/<id>.crt|.key, acl, mosquitto.conf"
                       : "secret, bridge-password, passwd, acl, mosquitto.conf",
               f.out.c_str(), f.out.c_str(),
               f.certs ? "; move private/ca.key offline: whoever holds it can mint any identity" : "");
  return 0;
}

void add_credentials(CommandLine& cl, CLI::App* sim_cmd) {
  auto* cmd = sim_cmd->add_subcommand(
      "credentials",
      "Write MQTT credentials for N cars: passwords (fleet secret, bridge password, mosquitto passwd) or, "
      "with "
      "--certs, a fleet CA and a certificate per car; the ACL and the broker's config lines either way");
  auto f = std::make_shared<CredentialFlags>();
  cmd->add_option("--cars", f->cars, "Number of cars")->required()->check(CLI::Range(1, 10000000));
  cmd->add_option("--out", f->out, "Directory to write (created)")->required();
  cmd->add_flag("--certs", f->certs,
                "Device certificates instead of passwords: fleet CA (EC P-256), one certificate per car "
                "(CN = car id), the bridge's and the brokers'");
  cmd->add_option("--server-name", f->server_names,
                  "With --certs: names (DNS or IP) in the brokers' certificate (default localhost 127.0.0.1)")
      ->delimiter(',');
  cl.add(
      cmd, [f](Config& config, std::atomic<int>&) { return write_credentials_dir(config, *f); }, false);
}

}  // namespace

void add_sim_commands(CommandLine& cl) {
  auto& flags = cl.flags();
  auto* cmd = cl.app().add_subcommand("sim", "Run the fleet simulator, publishing raw telemetry to the log");
  add_role_flags(flags, cmd);
  add_sim_flags(flags, cmd);
  cmd->require_subcommand(0, 1);
  flags.add(cmd, "--mqtt", keys::mqtt_brokers,
            "Publish over MQTT to HOST:PORT[,...] (car i -> broker i % n) instead of writing to the log");
  add_mqtt_flags(flags, cmd);
  flags.add(cmd, "--shard", keys::sim_shard, "Simulate only cars with index % shards == shard");
  flags.add(cmd, "--shards", keys::sim_shards, "See --shard");
  flags.add(cmd, "--cars-per-process", keys::mqtt_cars_per_process,
            "Cars per simulator process (default 16000)");
  auto worker_stats = std::make_shared<bool>(false);
  cmd->add_flag("--worker-stats", *worker_stats, "Print machine-readable status lines (worker processes)")
      ->group("");
  cl.add(cmd, [worker_stats](Config& config, std::atomic<int>& stop) {
    if (!config.get(keys::mqtt_brokers).empty()) return run_mqtt_cars(config, stop, *worker_stats);
    return run_role("sim", config, stop);
  });
  add_credentials(cl, cmd);
}

}  // namespace fleettwin::cli
