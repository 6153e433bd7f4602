#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/signals.h"
#include "sim/fleet.h"

using namespace fleettwin;
using namespace fleettwin::sim;

namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr std::size_t kCar = 2;

FleetConfig base(int64_t duration_ms) {
  FleetConfig c;
  c.cars = 5;
  c.seed = 2024;
  c.start_ms = 1'764'144'000'000;
  c.duration_ms = duration_ms;
  c.failure_rate = 0;
  return c;
}

// All messages of car `index`, in seq order.
std::vector<core::Telemetry> car_stream(const FleetConfig& cfg, std::size_t index,
                                        std::vector<GroundTruth>* failures = nullptr) {
  Fleet f(cfg);
  std::vector<core::Telemetry> out;
  core::Telemetry t;
  while (f.next(t))
    if (t.car == f.car_id(index)) out.push_back(t);
  if (failures) *failures = f.take_failures();
  return out;
}

double metres(const core::Telemetry& a, const core::Telemetry& b) {
  const double lat = (a.lat + b.lat) / 2 * M_PI / 180;
  const double dn = (b.lat - a.lat) * 111'320.0, de = (b.lon - a.lon) * 111'320.0 * std::cos(lat);
  return std::hypot(dn, de);
}

double correlation(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n,
               my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

struct Twins {
  std::vector<core::Telemetry> healthy, failing;
  GroundTruth truth;
};

// The same car with and without one planned failure.
Twins twins(FailureMode mode, int64_t onset_after = 20 * kMinute, int64_t ramp = 2 * kMinute,
            int64_t duration = 6 * kHour) {
  FleetConfig cfg = base(duration);
  cfg.ramp_ms = ramp;
  Twins t;
  t.healthy = car_stream(cfg, kCar);
  cfg.planned_failures.push_back({kCar, mode, onset_after});
  std::vector<GroundTruth> g;
  t.failing = car_stream(cfg, kCar, &g);
  EXPECT_EQ(g.size(), 1u);
  if (!g.empty()) t.truth = g[0];
  return t;
}

}  // namespace

TEST(Car, TripsAlternateBetweenParkedDrivingAndIdling) {
  auto s = car_stream(base(24 * kHour), kCar);
  ASSERT_EQ(s.size(), 24u * 360);
  int trips = 0, idles = 0;
  std::size_t parked = 0;
  for (std::size_t i = 1; i < s.size(); ++i) {
    const auto& v = s[i].values;
    const bool engine_off = v[core::kIntakeAirFlowSpeed] == 0;
    const bool moving = v[core::kSpeed] > 0;
    if (engine_off) {
      ++parked;
      EXPECT_EQ(v[core::kSpeed], 0);
      EXPECT_EQ(v[core::kThrottlePos], 0);
      EXPECT_LT(v[core::kEngineVibrationAmplitude], 10);
    }
    if (!engine_off && !moving) {  // idling engine
      EXPECT_GT(v[core::kEngineVibrationAmplitude], 150);
    }
    const bool prev_off = s[i - 1].values[core::kIntakeAirFlowSpeed] == 0;
    const bool prev_moving = s[i - 1].values[core::kSpeed] > 0;
    if (prev_off && !engine_off) ++trips;
    if (prev_moving && !moving && !engine_off) ++idles;
  }
  EXPECT_GE(trips, 5);
  EXPECT_LE(trips, 60);
  EXPECT_GT(idles, trips);
  EXPECT_GT(parked, s.size() / 5);
  EXPECT_LT(parked, s.size() * 4 / 5);
}

TEST(Car, DrivetrainSignalsFollowSpeedAndThrottle) {
  auto s = car_stream(base(24 * kHour), kCar);
  std::vector<double> speed, vib, flow, throttle;
  for (const auto& t : s)
    if (t.values[core::kSpeed] > 0) {
      speed.push_back(t.values[core::kSpeed]);
      vib.push_back(t.values[core::kEngineVibrationAmplitude]);
      flow.push_back(t.values[core::kIntakeAirFlowSpeed]);
      throttle.push_back(t.values[core::kThrottlePos]);
    }
  ASSERT_GT(speed.size(), 500u);
  EXPECT_GT(correlation(speed, vib), 0.9);
  EXPECT_GT(correlation(throttle, flow), 0.8);
  EXPECT_GT(correlation(speed, throttle), 0.5);
  EXPECT_GT(*std::max_element(speed.begin(), speed.end()), 20.0);  // some motorway
}

TEST(Car, BatteryDischargesWhileDrivingAndCoolantWarmsAndCools) {
  auto s = car_stream(base(24 * kHour), kCar);
  double running_coolant = 0, parked_coolant = 0;
  int running = 0, parked = 0, draining = 0, discharging_steps = 0;
  for (std::size_t i = 1; i < s.size(); ++i) {
    const auto& v = s[i].values;
    if (v[core::kSpeed] > 0 && v[core::kCurrentDraw] > 0) {
      ++discharging_steps;
      if (v[core::kBatteryPercentage] < s[i - 1].values[core::kBatteryPercentage]) ++draining;
    }
    if (v[core::kIntakeAirFlowSpeed] > 0) {
      running_coolant += v[core::kCoolantTemp];
      ++running;
    } else {
      parked_coolant += v[core::kCoolantTemp];
      ++parked;
    }
    // Loaded pack: the voltage sags below the open-circuit value.
    EXPECT_GT(v[core::kBatteryVoltage], 300);
    EXPECT_LT(v[core::kBatteryVoltage], 420);
  }
  ASSERT_GT(discharging_steps, 100);
  EXPECT_EQ(draining, discharging_steps);
  EXPECT_GT(running_coolant / running, parked_coolant / parked + 15);
  for (const auto& t : s) {
    for (std::size_t w = 0; w < 4; ++w) {
      EXPECT_GE(t.values[core::kTirePressure11 + w], 30);
      EXPECT_LE(t.values[core::kTirePressure11 + w], 37);
    }
    EXPECT_EQ(t.values[core::kControlUnitFirmware], std::floor(t.values[core::kControlUnitFirmware]));
  }
}

TEST(Car, PositionMovesSmoothlyAtTheReportedSpeedInsideTheBox) {
  FleetConfig cfg = base(24 * kHour);
  auto s = car_stream(cfg, kCar);
  const double dt = cfg.interval_ms / 1000.0;
  int checked = 0, turns = 0;
  double prev_heading = NAN;
  for (std::size_t i = 1; i < s.size(); ++i) {
    const auto &a = s[i - 1], &b = s[i];
    ASSERT_TRUE(cfg.box.contains(b.lat, b.lon));
    const double expected = 0.5 * (a.values[core::kSpeed] + b.values[core::kSpeed]) * dt;
    const double moved = metres(a, b);
    if (expected == 0) {
      EXPECT_EQ(moved, 0);
      prev_heading = NAN;
      continue;
    }
    const bool at_edge = b.lat == cfg.box.lat_min || b.lat == cfg.box.lat_max || b.lon == cfg.box.lon_min ||
                         b.lon == cfg.box.lon_max;
    if (!at_edge) {
      EXPECT_NEAR(moved, expected, expected * 0.01 + 0.01);
      ++checked;
    }
    const double heading = std::atan2((b.lon - a.lon) * std::cos(a.lat * M_PI / 180), b.lat - a.lat);
    if (!std::isnan(prev_heading) && expected > 20) {
      double d = std::abs(heading - prev_heading);
      d = std::min(d, 2 * M_PI - d);
      EXPECT_LT(d, 1.25);  // at most ~7 deg/s over a 10 s interval: no jumps
      if (d > 0.5) ++turns;
    }
    prev_heading = heading;
  }
  EXPECT_GT(checked, 1000);
  EXPECT_GT(turns, 10);  // it does turn at junctions
}

TEST(Car, ConfigurableBoundingBoxIsRespected) {
  FleetConfig cfg = base(12 * kHour);
  cfg.box = {52.45, 52.47, 13.30, 13.33};  // a small patch of Berlin: cars must keep turning back
  cfg.cars = 20;
  Fleet f(cfg);
  core::Telemetry t;
  while (f.next(t)) ASSERT_TRUE(cfg.box.contains(t.lat, t.lon)) << t.lat << "," << t.lon;
}

TEST(Car, PlannedFailureLeavesEverythingBeforeItsOnsetUntouched) {
  for (FailureMode m : kFailureModes) {
    auto tw = twins(m);
    ASSERT_EQ(tw.healthy.size(), tw.failing.size());
    EXPECT_EQ(tw.truth.car, "car-00002");
    EXPECT_EQ(tw.truth.mode, m);
    EXPECT_EQ(tw.truth.onset_ts, tw.healthy[0].ts + 20 * kMinute);
    EXPECT_EQ(tw.truth.full_ts, tw.truth.onset_ts + 2 * kMinute);
    for (std::size_t i = 0; i < tw.healthy.size(); ++i) {
      const auto &h = tw.healthy[i], &f = tw.failing[i];
      if (h.ts <= tw.truth.onset_ts) {
        ASSERT_EQ(h, f) << to_string(m) << " seq " << h.seq;
      }
      // A failure never changes where or how the car drives.
      ASSERT_EQ(h.values[core::kSpeed], f.values[core::kSpeed]);
      ASSERT_EQ(h.lat, f.lat);
      ASSERT_EQ(h.lon, f.lon);
    }
  }
}

TEST(Car, TyrePressureLossDropsOneTyre) {
  auto tw = twins(FailureMode::kTyrePressureLoss);
  int full = 0;
  for (std::size_t i = 0; i < tw.healthy.size(); ++i) {
    if (tw.healthy[i].ts < tw.truth.full_ts) continue;
    int lower = 0;
    for (std::size_t w = 0; w < 4; ++w) {
      const double d =
          tw.healthy[i].values[core::kTirePressure11 + w] - tw.failing[i].values[core::kTirePressure11 + w];
      if (d != 0) {
        EXPECT_GE(d, 16);
        EXPECT_LE(d, 18);
        ++lower;
      }
    }
    EXPECT_EQ(lower, 1);
    ++full;
  }
  EXPECT_GT(full, 1000);
}

TEST(Car, ShockAbsorberFailureAmplifiesOneCorner) {
  auto tw = twins(FailureMode::kShockAbsorberFailure);
  std::array<double, 4> sum_h{}, sum_f{};
  for (std::size_t i = 0; i < tw.healthy.size(); ++i) {
    if (tw.healthy[i].ts < tw.truth.full_ts) continue;
    for (std::size_t k = 0; k < 4; ++k) {
      const double h = tw.healthy[i].values[core::kAccelerometer11 + k],
                   f = tw.failing[i].values[core::kAccelerometer11 + k];
      EXPECT_GE(std::abs(f), std::abs(h));
      sum_h[k] += std::abs(h);
      sum_f[k] += std::abs(f);
    }
  }
  int amplified = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    if (sum_f[k] == sum_h[k]) continue;
    ++amplified;
    EXPECT_NEAR(sum_f[k] / sum_h[k], 4.0, 0.01);
  }
  EXPECT_EQ(amplified, 1);
}

TEST(Car, DriveShaftDegradationRaisesVibrationRelativeToSpeed) {
  auto tw = twins(FailureMode::kDriveShaftDegradation);
  int fast = 0;
  for (std::size_t i = 0; i < tw.healthy.size(); ++i) {
    if (tw.healthy[i].ts < tw.truth.full_ts) continue;
    const double speed = tw.healthy[i].values[core::kSpeed];
    const double extra = tw.failing[i].values[core::kEngineVibrationAmplitude] -
                         tw.healthy[i].values[core::kEngineVibrationAmplitude];
    EXPECT_NEAR(extra, 100.0 * speed, 1e-6);  // grows with speed, none when stopped
    if (speed > 10) ++fast;
  }
  EXPECT_GT(fast, 100);
}

TEST(Car, CoolantOverheatingRunsHotWhileTheEngineRuns) {
  auto tw = twins(FailureMode::kCoolantOverheating);
  double max_diff = 0;
  for (std::size_t i = 0; i < tw.healthy.size(); ++i) {
    if (tw.healthy[i].ts <= tw.truth.onset_ts) continue;
    const double d = tw.failing[i].values[core::kCoolantTemp] - tw.healthy[i].values[core::kCoolantTemp];
    EXPECT_GE(d, -1e-9);
    max_diff = std::max(max_diff, d);
  }
  EXPECT_GT(max_diff, 30);
}

TEST(Car, BatteryCellDegradationSagsVoltageAndDrainsFaster) {
  auto tw = twins(FailureMode::kBatteryCellDegradation);
  double soc_gap = 0;
  int n = 0, compared_drains = 0;
  for (std::size_t i = 1; i < tw.healthy.size(); ++i) {
    if (tw.healthy[i - 1].ts < tw.truth.full_ts) continue;
    const auto &h = tw.healthy[i].values, &f = tw.failing[i].values;
    EXPECT_LT(f[core::kBatteryVoltage], h[core::kBatteryVoltage] - 10);
    EXPECT_LE(f[core::kBatteryPercentage], h[core::kBatteryPercentage] + 1e-9);
    soc_gap += h[core::kBatteryPercentage] - f[core::kBatteryPercentage];
    ++n;
    // Same load on both packs: the degraded one loses charge three times as fast.
    if (h[core::kCurrentDraw] > 0 && h[core::kCurrentDraw] == f[core::kCurrentDraw]) {
      const double dh = tw.healthy[i - 1].values[core::kBatteryPercentage] - h[core::kBatteryPercentage];
      const double df = tw.failing[i - 1].values[core::kBatteryPercentage] - f[core::kBatteryPercentage];
      EXPECT_NEAR(df, 3 * dh, 1e-9);
      ++compared_drains;
    }
  }
  EXPECT_GT(compared_drains, 100);
  EXPECT_GT(soc_gap / n, 3.0);
}

TEST(Car, OutdatedFirmwareFallsBehindTheFleet) {
  FleetConfig cfg = base(30 * kHour);
  cfg.firmware_release_ms = 6 * kHour;
  auto healthy = car_stream(cfg, kCar);
  EXPECT_GT(healthy.back().values[core::kControlUnitFirmware],
            healthy.front().values[core::kControlUnitFirmware]);
  cfg.ramp_ms = 10 * kHour;
  cfg.planned_failures.push_back({kCar, FailureMode::kOutdatedFirmware, 2 * kHour});
  auto failing = car_stream(cfg, kCar);
  const int64_t full = failing[0].ts + 12 * kHour;
  for (std::size_t i = 0; i < healthy.size(); ++i) {
    const double h = healthy[i].values[core::kControlUnitFirmware],
                 f = failing[i].values[core::kControlUnitFirmware];
    if (healthy[i].ts < full) {
      EXPECT_LE(f, h);  // frozen: it misses the releases during the ramp
      if (healthy[i].ts < failing[0].ts + 2 * kHour) {
        EXPECT_EQ(f, h);
      }
    } else {
      EXPECT_LT(f, h);
      EXPECT_EQ(f,
                failing[0].values[core::kControlUnitFirmware] - 3);  // rolled back below the version it had
    }
  }
}

TEST(Car, SignatureGrowsOverTheRamp) {
  const int64_t onset = 30 * kMinute, ramp = 20 * kMinute;
  auto tw = twins(FailureMode::kDriveShaftDegradation, onset, ramp, 2 * kHour);
  auto tyre = twins(FailureMode::kTyrePressureLoss, onset, ramp, 2 * kHour);
  double prev_drop = 0;
  int in_ramp = 0;
  for (std::size_t i = 0; i < tw.healthy.size(); ++i) {
    const int64_t ts = tw.healthy[i].ts;
    const double expected_sev = std::clamp(static_cast<double>(ts - tw.truth.onset_ts) / ramp, 0.0, 1.0);
    const double extra = tw.failing[i].values[core::kEngineVibrationAmplitude] -
                         tw.healthy[i].values[core::kEngineVibrationAmplitude];
    EXPECT_NEAR(extra, 100.0 * expected_sev * tw.healthy[i].values[core::kSpeed], 1e-6);

    double drop = 0;
    for (std::size_t w = 0; w < 4; ++w)
      drop += tyre.healthy[i].values[core::kTirePressure11 + w] -
              tyre.failing[i].values[core::kTirePressure11 + w];
    EXPECT_NEAR(drop, 17.0 * expected_sev, 1.0) << "seq " << tw.healthy[i].seq;
    EXPECT_GE(drop, prev_drop - 1);  // rounding of the int psi may wobble by one
    prev_drop = drop;
    if (expected_sev > 0.2 && expected_sev < 0.8) ++in_ramp;
  }
  EXPECT_GT(in_ramp, 50);
}

TEST(Car, ZeroRampMeansFullSignatureAtOnset) {
  auto tw = twins(FailureMode::kDriveShaftDegradation, 20 * kMinute, 0, kHour);
  EXPECT_EQ(tw.truth.full_ts, tw.truth.onset_ts);
  for (std::size_t i = 0; i < tw.healthy.size(); ++i) {
    const double extra = tw.failing[i].values[core::kEngineVibrationAmplitude] -
                         tw.healthy[i].values[core::kEngineVibrationAmplitude];
    const double expected =
        tw.healthy[i].ts >= tw.truth.onset_ts ? 100.0 * tw.healthy[i].values[core::kSpeed] : 0;
    EXPECT_NEAR(extra, expected, 1e-6);
  }
}
