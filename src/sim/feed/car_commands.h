#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/alert.h"
#include "sim/fleet.h"

namespace fleettwin::sim {

/// The simulated cars' side of commands (DESIGN.md §4 MQTT fleet/{car}/commands -> fleet/{car}/acks): applies
/// a command to the car's model (a speed limit changes how fast it drives, a firmware update what it reports)
/// and answers with the car's settings. Shared by the MQTT fleet (one connection per car) and the direct
/// simulator of the embedded mode (which reads fleet.commands itself). Owned by the simulator's thread.
class CarCommands {
 public:
  explicit CarCommands(sim::Fleet& fleet) : _fleet(fleet) {}
  /// Applies `payload` (a Command document) to car `index` at wall time `now_ms` and returns the ack:
  /// acked with every setting the car now has, failed (unreadable or unknown command) or expired.
  core::CommandAck obey(std::size_t index, std::string_view payload, int64_t now_ms);
  int64_t received() const { return _received; }

 private:
  sim::Fleet& _fleet;
  std::unordered_map<std::size_t, std::map<std::string, std::string>> _settings;  // cars that got commands
  int64_t _received = 0;
};

}  // namespace fleettwin::sim
