#pragma once

#include <string>

#include "mqtt/broker_address.h"

namespace fleettwin::testing {

/// The address of a broker that scripts/services/mosquitto printed as "host:port".
inline mqtt::BrokerAddress address_of(const std::string& a) {
  return {a.substr(0, a.rfind(':')), static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)))};
}

}  // namespace fleettwin::testing
