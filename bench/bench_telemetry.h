#pragma once
// Random, full-precision telemetry of the built-in catalog for the micro benchmarks: messages cycle through
// a pool of these so branch predictors cannot memorise one payload.

#include <cstdint>
#include <random>
#include <string>

#include "core/signals.h"
#include "core/telemetry.h"

namespace fleettwin::bench {

inline core::Telemetry random_telemetry(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  core::Telemetry t;
  t.car = "car-" + std::to_string(10000 + rng() % 90000);
  t.ts = 1718000000000 + static_cast<int64_t>(rng() % 1000000000);
  t.seq = 1 + static_cast<int64_t>(rng() % 10000000);
  t.lat = -90 + 180 * unit(rng);
  t.lon = -180 + 360 * unit(rng);
  for (std::size_t i = 0; i < core::kSignalCount; ++i) {
    const auto& s = core::kSignals[i];
    double v = s.min + (s.max - s.min) * unit(rng);
    if (s.type == core::SignalType::kInt) v = static_cast<double>(static_cast<int64_t>(v));
    t.values[i] = v;
  }
  return t;
}

}  // namespace fleettwin::bench
