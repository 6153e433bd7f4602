// `fleettwin bridge`: the MQTT front door as a process of its own, between the brokers and Kafka.
#include "app/mqtt_front.h"
#include "cli/command_line.h"
#include "cli/commands.h"

namespace fleettwin::cli {

void add_bridge_commands(CommandLine& cl) {
  auto& flags = cl.flags();
  auto* cmd = cl.app().add_subcommand(
      "bridge",
      "Run the MQTT bridge: cars' telemetry and acks -> log (PUBACK after the log has it), commands -> cars");
  add_distributed_flags(flags, cmd);
  flags.add(cmd, "--mqtt", keys::mqtt_brokers, "MQTT brokers HOST:PORT[,...] to read from (all of them)");
  add_mqtt_flags(flags, cmd);
  flags.add(cmd, "--client-id", keys::mqtt_client_id,
            "Client id prefix; reuse it on restart, give each copy its own (default fleettwin-bridge)");
  flags.add(cmd, "--receive-maximum", keys::mqtt_receive_maximum,
            "Unacknowledged messages per broker connection (default 2000)");
  flags.add(cmd, "--max-message-bytes", keys::mqtt_max_message_bytes,
            "Largest payload taken; larger ones go to the DLQ as too_large (default 262144)");
  flags.add(cmd, "--rate-limit", keys::mqtt_rate_limit,
            "Messages per second per car; the excess goes to the DLQ as rate_limited (default 0: none)");
  flags.add(cmd, "--group", keys::group, "Consumer group of fleet.commands (default fleettwin.bridge)");
  flags.add(cmd, "--metrics-listen", keys::metrics_listen,
            "Serve /metrics, /healthz and /readyz on HOST:PORT (default: none)");
  cl.add(cmd, [](Config& config, std::atomic<int>& stop) { return app::run_bridge(config, stop); });
}

}  // namespace fleettwin::cli
