#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/signals.h"

namespace fleettwin::core {

/// The value of a signal, or of the position, that a message did not carry.
inline constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();
/// True when `v` stands for a reading the message did not carry.
inline bool absent(double v) { return std::isnan(v); }

/// One validated telemetry message from one car. Its signals are those of the catalog in use
/// (catalog/catalog.h), by index: every stage of one process reads one catalog, and records written under
/// another catalog version are resolved to it when read. Plain value; moved between threads by the log.
struct Telemetry {
  std::string car;
  int64_t ts = 0;        ///< device time, ms since the Unix epoch
  int64_t seq = 0;       ///< per car, strictly increasing, starts at 1
  double lat = kAbsent;  ///< degrees; kAbsent when the car sent no position
  double lon = kAbsent;
  /// One value per catalog signal, in catalog order; kAbsent for a signal this message did not carry (cars
  /// may send any subset). Int and bool signals hold whole numbers (bool: 0 or 1). A default Telemetry is
  /// sized for the built-in catalog, every signal absent; producers size it to their catalog.
  std::vector<double> values = std::vector<double>(kSignalCount, kAbsent);
  /// Catalog indices of the values outside their plausible range, ascending. Such readings are kept and
  /// flagged, not rejected: an implausible reading is often what a failing sensor or part looks like.
  std::vector<uint16_t> out_of_range;

  bool has_position() const { return !absent(lat) && !absent(lon); }
  bool flagged(std::size_t signal) const;
  /// Equal when every field is; an absent value equals an absent value.
  bool operator==(const Telemetry& o) const;
};

}  // namespace fleettwin::core
