#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/signals.h"

namespace fleettwin::core {

/// One validated telemetry message from one car. Plain value; moved between threads by the log.
struct Telemetry {
  std::string car;
  int64_t ts = 0;   ///< device time, ms since the Unix epoch
  int64_t seq = 0;  ///< per car, strictly increasing, starts at 1
  double lat = 0;
  double lon = 0;
  std::array<double, kSignalCount> values{};  ///< indexed by core::Signal; kInt signals hold whole numbers

  bool operator==(const Telemetry&) const = default;
};

}  // namespace fleettwin::core
