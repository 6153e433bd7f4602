#pragma once

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/signals.h"
#include "core/telemetry.h"

namespace fleettwin::codec::testing {

/// A plausible message, the one of tests/fixtures/codec/telemetry_valid.json.
inline core::Telemetry sample_telemetry() {
  core::Telemetry t;
  t.car = "car-00042";
  t.ts = 1718000000123;
  t.seq = 123456;
  t.lat = 48.137154;
  t.lon = 11.576124;
  t.values = {90.5, 25.25, 12.345, 87.6, 12.6,  -3.1415926535, 22.2,      1234.5,     0.35,
              32,   31,    33,     32,   0.125, -0.98765432,   0.5555555, -0.4444444, 1042};
  return t;
}

/// Random valid telemetry: full-precision doubles (the hard case for shortest round trips), whole int
/// signals, and now and then a range edge or -0.0. Deterministic for a given engine state.
inline core::Telemetry random_telemetry(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0, 1);
  const auto pick = [&](double min, double max) {
    const double r = unit(rng);
    if (r < 0.02) return min;
    if (r < 0.04) return max;
    if (r < 0.05 && min <= 0 && max >= 0) return -0.0;
    return min + (max - min) * unit(rng);
  };
  core::Telemetry t;
  t.car = "car-" + std::to_string(rng() % 100000);
  t.ts = 1 + static_cast<int64_t>(rng() % 4102444800000ULL);
  t.seq = 1 + static_cast<int64_t>(rng() % (uint64_t{1} << 62));
  t.lat = pick(core::kLatMin, core::kLatMax);
  t.lon = pick(core::kLonMin, core::kLonMax);
  for (std::size_t i = 0; i < core::kSignalCount; ++i) {
    const auto& s = core::kSignals[i];
    t.values[i] = pick(s.min, s.max);
    if (s.type == core::SignalType::kInt) t.values[i] = std::round(t.values[i]) + 0.0;  // +0.0: no -0
  }
  return t;
}

/// A message of car "c1" (ts 5, seq 1) sized for a catalog of `signals` signals, every signal absent.
inline core::Telemetry empty_telemetry(std::size_t signals) {
  core::Telemetry t;
  t.car = "c1";
  t.ts = 5;
  t.seq = 1;
  t.values.assign(signals, core::kAbsent);
  return t;
}

inline std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(FLEETTWIN_FIXTURES) + "/codec/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Bit equality, so -0.0 vs 0.0 counts as a difference (operator== would not notice).
inline bool same_bits(const core::Telemetry& a, const core::Telemetry& b) {
  if (!(a == b)) return false;
  if (std::signbit(a.lat) != std::signbit(b.lat) || std::signbit(a.lon) != std::signbit(b.lon)) return false;
  for (std::size_t i = 0; i < core::kSignalCount; ++i) {
    if (std::signbit(a.values[i]) != std::signbit(b.values[i])) return false;
  }
  return true;
}

}  // namespace fleettwin::codec::testing
