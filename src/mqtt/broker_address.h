#pragma once

#include <cstdint>
#include <string>

namespace fleettwin::mqtt {

/// Where an MQTT broker listens. Cars (the simulator) and the bridge both take a list of them.
struct BrokerAddress {
  std::string host;
  std::uint16_t port = 1883;
};

}  // namespace fleettwin::mqtt
