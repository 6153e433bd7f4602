#include "sim/feed/car_commands.h"

#include "codec/json.h"

namespace fleettwin::sim {

core::CommandAck CarCommands::obey(std::size_t index, std::string_view payload, int64_t now_ms) {
  ++_received;
  core::Command c;
  core::CommandAck ack;
  ack.car = _fleet.car_id(index);
  ack.ts = now_ms;
  std::string why;
  std::map<std::string, std::string> changes;
  if (!codec::command_from_json(payload, c, &why)) {
    ack.id = "unknown";
    ack.status = "failed";
    ack.reason = "unreadable command: " + why;
    return ack;
  }
  ack.id = c.id;
  if (c.expires > 0 && c.expires < now_ms) {
    ack.status = "expired";
    ack.reason = "arrived after its expiry";
  } else if (!codec::command_settings(c, changes, &why)) {
    ack.status = "failed";
    ack.reason = why;
  } else {
    sim::Car& car = _fleet.car(index);
    if (c.name == "set_speed_limit") car.set_speed_limit_kmh(std::stod(changes.at("speed_limit_kmh")));
    if (c.name == "update_firmware") car.install_firmware(std::stoi(changes.at("firmware_version")));
    auto& mine = _settings[index];
    for (auto& [k, v] : changes) mine[k] = v;
    ack.status = "acked";
    ack.reported = mine;
  }
  return ack;
}

}  // namespace fleettwin::sim
