// The simulator under another catalog's names (sim.catalog) and a mixed fleet (sim.upgraded_share).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "catalog/catalog.h"
#include "core/signals.h"
#include "sim/fleet.h"
#include "sim/signal_map.h"

using namespace fleettwin;
using namespace fleettwin::sim;

namespace {

std::shared_ptr<const catalog::Catalog> vss() {
  static const auto kVss = std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
  return kVss;
}

FleetConfig small_fleet(std::shared_ptr<const catalog::Catalog> catalog, double share) {
  FleetConfig c;
  c.cars = 40;
  c.seed = 5;
  c.start_ms = 1'700'000'000'000;
  c.duration_ms = 20 * 60'000;
  c.catalog = std::move(catalog);
  c.upgraded_share = share;
  return c;
}

// Signals added after version 1 of the catalog: what only upgraded cars send.
std::vector<std::size_t> newer_signals(const catalog::Catalog& c) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c[i].since >= 2) out.push_back(i);
  return out;
}

}  // namespace

TEST(SignalMap, TheBuiltInCatalogIsTheCarsOwnLayout) {
  EXPECT_TRUE(SignalMap(catalog::builtin()).identity());
  EXPECT_FALSE(SignalMap(vss()).identity());
}

TEST(SignalMap, AVssFleetSendsTheSameValuesUnderVssSignals) {
  Fleet plain(small_fleet(nullptr, 0)), named(small_fleet(vss(), 0));
  const auto& c = *vss();
  const auto speed = c.index_of("Vehicle.Speed"),
             coolant = c.index_of("Vehicle.Powertrain.CombustionEngine.ECT");
  core::Telemetry a, b;
  int compared = 0;
  while (plain.next(a)) {
    ASSERT_TRUE(named.next(b));
    ASSERT_EQ(a.car, b.car);
    ASSERT_EQ(b.values.size(), c.size());
    // Every cardata signal under its VSS name, with the value the car wrote.
    for (std::size_t s = 0; s < core::kSignalCount; ++s)
      EXPECT_EQ(b.values[*c.find(core::kSignals[s].name)], a.values[s]);
    EXPECT_EQ(b.values[speed], a.values[core::kSpeed]);
    EXPECT_EQ(b.values[coolant], a.values[core::kCoolantTemp]);
    // No upgraded car: the signals of version 2 are not sent.
    for (const auto i : newer_signals(c)) EXPECT_TRUE(core::absent(b.values[i])) << c[i].name;
    ++compared;
  }
  EXPECT_GT(compared, 1000);
}

TEST(SignalMap, HalfTheFleetUpgradedSendsTheNewerSignalsWithPlausibleValues) {
  const auto& c = *vss();
  const auto newer = newer_signals(c);
  ASSERT_GE(newer.size(), 6u);
  Fleet fleet(small_fleet(vss(), 0.5));
  const auto odometer = *c.find("odometer"), cabin = *c.find("cabin_temp"), tyre = *c.find("tire_temp_1_1");
  std::map<std::string, bool> sends;    // car -> sends the newer signals
  std::map<std::string, double> first;  // car -> first odometer reading
  std::map<std::string, double> last;
  core::Telemetry t;
  while (fleet.next(t)) {
    const bool extra = !core::absent(t.values[odometer]);
    auto [it, fresh] = sends.emplace(t.car, extra);
    EXPECT_EQ(it->second, extra) << t.car << " changed firmware mid-run";
    if (!extra) continue;
    for (const auto i : newer) {
      ASSERT_FALSE(core::absent(t.values[i])) << c[i].name;
      EXPECT_TRUE(c[i].in_range(t.values[i])) << c[i].name << " = " << t.values[i];
    }
    EXPECT_GT(t.values[cabin], 10);
    EXPECT_LT(t.values[tyre], 80);
    first.emplace(t.car, t.values[odometer]);
    EXPECT_GE(t.values[odometer], last[t.car]);  // an odometer never runs back
    last[t.car] = t.values[odometer];
  }
  int upgraded = 0;
  for (const auto& [car, extra] : sends) upgraded += extra ? 1 : 0;
  EXPECT_EQ(sends.size(), 40u);
  EXPECT_EQ(upgraded, 20);
  // Cars that drove have more on the clock than they started with.
  int moved = 0;
  for (const auto& [car, km] : first) moved += last[car] > km + 0.1 ? 1 : 0;
  EXPECT_GT(moved, 0);
}

TEST(SignalMap, UpgradedCarsAreSpreadEvenlyAndDoNotDependOnFleetSize) {
  int n = 0;
  for (std::size_t i = 0; i < 1000; ++i) n += upgraded_car(i, 0.3) ? 1 : 0;
  EXPECT_EQ(n, 300);
  EXPECT_FALSE(upgraded_car(7, 0));
  EXPECT_TRUE(upgraded_car(7, 1));
  FleetConfig bad = small_fleet(vss(), 1.5);
  EXPECT_NE(validate(bad), "");
}
