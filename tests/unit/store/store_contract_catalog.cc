// The TwinStore contract for signals that follow a catalog: absent readings and out-of-range flags round-trip
// in history and twins, a store on a VSS-style catalog answers by any name of a signal, and a store reopened
// with a catalog that adds a signal reads old data with the new signal absent. Linked into every adapter's
// contract binary (store_contract.h).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

using catalog::Catalog;
using catalog::SignalSpec;
using core::kAbsent;

constexpr int64_t kT0 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z, an hour boundary
constexpr int64_t kHour = 3'600'000;

SignalSpec spec(std::string name, core::SignalType type, double min, double max,
                std::vector<std::string> aliases = {}, int since = 1) {
  SignalSpec s;
  s.name = std::move(name);
  s.type = type;
  s.min = min;
  s.max = max;
  s.aliases = std::move(aliases);
  s.since = since;
  return s;
}

/// A small VSS-style catalog: dotted names (fields Vehicle_Speed, ...), cardata aliases, every type.
std::shared_ptr<const Catalog> vss() {
  using core::SignalType;
  return std::make_shared<const Catalog>(
      "vss-test", 1, "",
      std::vector<SignalSpec>{spec("Vehicle.Speed", SignalType::kDouble, 0, 100, {"speed"}),
                              spec("Vehicle.Cabin.Temperature", SignalType::kDouble, -50, 90, {"cabin_temp"}),
                              spec("Vehicle.IsMoving", SignalType::kBool, 0, 1),
                              spec("Vehicle.TraveledDistance", SignalType::kInt, 0, 2e6, {"odometer"})});
}

/// A fleet's catalog in two versions: v2 adds oil_temp.
std::shared_ptr<const Catalog> fleet(int version) {
  using core::SignalType;
  std::vector<SignalSpec> s{spec("speed", SignalType::kDouble, 0, 100),
                            spec("coolant_temp", SignalType::kDouble, -40, 150)};
  if (version >= 2) s.push_back(spec("oil_temp", SignalType::kDouble, -40, 200, {}, 2));
  return std::make_shared<const Catalog>("fleet", version, "", std::move(s));
}

/// A message of `car` sized to `c`, every signal absent until set.
core::Telemetry blank(const Catalog& c, const std::string& car, int64_t seq, int64_t ts) {
  core::Telemetry t;
  t.car = car;
  t.seq = seq;
  t.ts = ts;
  t.values.assign(c.size(), kAbsent);
  return t;
}

core::Twin twin_of(const Catalog& c, const core::Telemetry& reported, int64_t version) {
  core::Twin t;
  t.id = reported.car;
  t.version = version;
  t.reported = reported;
  t.has_reported = true;
  t.metadata.assign(c.size(), 0);
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!core::absent(reported.values[i])) t.metadata[i] = reported.ts;
  }
  t.first_seen = kT0;
  t.last_seen = reported.ts;
  t.messages = reported.seq;
  return t;
}

TEST_P(StoreContract, AbsentSignalsAndFlagsRoundTripInHistory) {
  const Catalog& c = *catalog::builtin();
  // Only three signals carried, two of them flagged (an implausible coolant reading and tyre pressure).
  core::Telemetry partial = blank(c, "ab-1", 1, kT0);
  partial.values[core::kCoolantTemp] = 180;
  partial.values[core::kSpeed] = 12.5;
  partial.values[core::kTirePressure11] = 140;
  partial.out_of_range = {core::kCoolantTemp, core::kTirePressure11};
  partial.lat = kAbsent;
  partial.lon = kAbsent;
  core::Telemetry none = blank(c, "ab-1", 2, kT0 + 1000);  // a message with no signal at all
  none.lat = 52.5;
  none.lon = 13.4;
  store->write({{{partial, 0.25}, {none, std::nullopt}}, {}, {}, {}});

  const auto h = store->history("ab-1", kT0, kT0 + 2000);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], (TelemetryRow{partial, 0.25}));
  EXPECT_EQ(h[1], (TelemetryRow{none, std::nullopt}));
  ASSERT_EQ(h[0].t.values.size(), c.size());
  EXPECT_TRUE(core::absent(h[0].t.values[core::kIntakeAirTemp]));
  EXPECT_FALSE(core::absent(h[0].t.values[core::kSpeed]));
  EXPECT_EQ(h[0].t.out_of_range, (std::vector<uint16_t>{core::kCoolantTemp, core::kTirePressure11}));
  EXPECT_TRUE(h[1].t.out_of_range.empty());
  EXPECT_FALSE(h[0].t.has_position());
  for (double v : h[1].t.values) EXPECT_TRUE(core::absent(v));
}

TEST_P(StoreContract, AbsentSignalsAndFlagsRoundTripInTwins) {
  const Catalog& c = *catalog::builtin();
  core::Telemetry r = blank(c, "tw-1", 5, kT0 + 5000);
  r.values[core::kSpeed] = 31;
  r.values[core::kCoolantTemp] = 170;
  r.out_of_range = {core::kCoolantTemp};
  core::Twin t = twin_of(c, r, 5);
  t.metadata[core::kBatteryVoltage] = kT0;  // seen once, absent in the last message
  store->write({{}, {t}, {}, {}});
  auto got = store->get_twin("tw-1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, t);
  EXPECT_TRUE(core::absent(got->reported.values[core::kBatteryVoltage]));
  EXPECT_EQ(got->metadata[core::kBatteryVoltage], kT0);
  EXPECT_EQ(got->metadata[core::kThrottlePos], 0);
  EXPECT_EQ(got->reported.out_of_range, std::vector<uint16_t>{core::kCoolantTemp});

  // The next state clears the flag: it must not survive the upsert.
  core::Twin next = t;
  next.version = 6;
  next.reported.seq = 6;
  next.reported.values[core::kCoolantTemp] = 90;
  next.reported.out_of_range.clear();
  store->write({{}, {next}, {}, {}});
  got = store->get_twin("tw-1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, next);
  EXPECT_TRUE(got->reported.out_of_range.empty());

  // Filters treat an absent signal as the reference evaluator does: only != matches it.
  core::Twin other = twin_of(c, blank(c, "tw-2", 1, kT0), 1);  // no signal at all
  store->write({{}, {other}, {}, {}});
  for (const char* text : {"reported.speed > 10", "reported.speed != 31", "!(reported.speed > 40)",
                           "reported.battery_voltage == 0", "metadata.battery_voltage > 0"}) {
    SCOPED_TRACE(text);
    const Filter f = parse_filter(text);
    std::vector<std::string> expected;
    for (const auto& x : {next, other}) {
      if (matches(f, x)) expected.push_back(x.id);
    }
    EXPECT_EQ(twin_ids(store->list_twins({.filter = f})), expected);
  }
  EXPECT_EQ(twin_ids(store->list_twins({.filter = parse_filter("reported.speed != 31")})),
            std::vector<std::string>{"tw-2"});
}

TEST_P(StoreContract, VssCatalogStoreAnswersByNameFieldAndAlias) {
  const auto c = vss();
  auto s = open_another(c);
  // v-1: two hours of messages every 20 minutes; speed = seq, cabin temperature on even seqs only.
  WriteBatch b;
  for (int q = 1; q <= 6; ++q) {
    core::Telemetry t = blank(*c, "v-1", q, kT0 + (q - 1) * 1'200'000);
    t.values[0] = q;
    if (q % 2 == 0) t.values[1] = 20.5 + q;
    t.values[2] = q > 1 ? 1 : 0;
    t.values[3] = 1000 + q;
    if (q == 6) {
      t.values[1] = 95;  // above the cabin range: kept, flagged
      t.out_of_range = {1};
    }
    b.telemetry.push_back({t, std::nullopt});
  }
  for (int car = 0; car < 3; ++car) {
    core::Telemetry r = blank(*c, "vt-" + std::to_string(car), 10, kT0);
    r.values[0] = 10.0 + 15.0 * car;  // 10, 25, 40
    if (car != 1) r.values[3] = 500 * car;
    b.twins.push_back(twin_of(*c, r, 10));
  }
  b.twins[2].reported.out_of_range = {0};
  s->write(b);

  const auto h = s->history("v-1", kT0, kT0 + 3 * kHour);
  ASSERT_EQ(h.size(), 6u);
  for (std::size_t i = 0; i < h.size(); ++i) EXPECT_EQ(h[i], b.telemetry[i]) << i;
  EXPECT_TRUE(core::absent(h[0].t.values[1]));
  EXPECT_EQ(h[5].t.out_of_range, std::vector<uint16_t>{1});
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(s->get_twin(b.twins[i].id), b.twins[i]) << i;

  // hourly by name, field and alias: one signal. Hour 0 holds seqs 1..3, hour 1 seqs 4..6.
  const auto by_name = s->hourly("v-1", "Vehicle.Speed", kT0, kT0 + 2 * kHour);
  ASSERT_EQ(by_name.size(), 2u);
  EXPECT_EQ(by_name[0], (HourlyAggregate{kT0, 1, 2, 3, 3}));
  EXPECT_EQ(by_name[1], (HourlyAggregate{kT0 + kHour, 4, 5, 6, 3}));
  EXPECT_EQ(s->hourly("v-1", "Vehicle_Speed", kT0, kT0 + 2 * kHour), by_name);
  EXPECT_EQ(s->hourly("v-1", "speed", kT0, kT0 + 2 * kHour), by_name);
  // Absent readings are not counted: the cabin temperature only on even seqs.
  const auto cabin = s->hourly("v-1", "cabin_temp", kT0, kT0 + 2 * kHour);
  ASSERT_EQ(cabin.size(), 2u);
  EXPECT_EQ(cabin[0], (HourlyAggregate{kT0, 22.5, 22.5, 22.5, 1}));
  EXPECT_EQ(cabin[1].count, 2);
  EXPECT_EQ(cabin[1].max, 95);
  EXPECT_THROW(s->hourly("v-1", "coolant_temp", kT0, kT0 + kHour), std::invalid_argument);
  EXPECT_THROW(s->hourly("v-1", "Vehicle", kT0, kT0 + kHour), std::invalid_argument);

  // Filters and sorts by any name; the reference evaluator agrees.
  for (const char* text :
       {"reported.Vehicle.Speed > 20", "reported.speed > 20", "reported.Vehicle_Speed > 20",
        "reported.odometer >= 0", "metadata.Vehicle.TraveledDistance > 0"}) {
    SCOPED_TRACE(text);
    const Filter f = parse_filter(text, *c);
    std::vector<std::string> expected;
    for (const auto& t : b.twins) {
      if (matches(f, t)) expected.push_back(t.id);
    }
    EXPECT_EQ(twin_ids(s->list_twins({.filter = f})), expected);
  }
  EXPECT_EQ(twin_ids(s->list_twins({.filter = parse_filter("reported.speed > 20", *c)})),
            (std::vector<std::string>{"vt-1", "vt-2"}));
  EXPECT_THROW(parse_filter("reported.coolant_temp > 1", *c), FilterError);
  EXPECT_EQ(twin_ids(s->list_twins({.sort = "-reported.Vehicle.Speed"})),
            (std::vector<std::string>{"vt-2", "vt-1", "vt-0"}));
  EXPECT_EQ(twin_ids(s->list_twins({.sort = "-reported.speed"})),
            (std::vector<std::string>{"vt-2", "vt-1", "vt-0"}));
}

TEST_P(StoreContract, ACatalogThatAddsASignalReadsOldDataWithItAbsent) {
  const auto v1 = fleet(1);
  const auto v2 = fleet(2);
  auto old_store = open_another(v1);
  core::Telemetry first = blank(*v1, "up-1", 1, kT0);
  first.values = {10, 90};
  first.out_of_range.clear();
  old_store->write({{{first, std::nullopt}}, {twin_of(*v1, first, 1)}, {}, {}});

  auto new_store = open_another(v2);
  auto h = new_store->history("up-1", kT0, kT0 + 10'000);
  ASSERT_EQ(h.size(), 1u);
  ASSERT_EQ(h[0].t.values.size(), 3u);
  EXPECT_EQ(h[0].t.values[0], 10);
  EXPECT_EQ(h[0].t.values[1], 90);
  EXPECT_TRUE(core::absent(h[0].t.values[2]));
  auto twin = new_store->get_twin("up-1");
  ASSERT_TRUE(twin.has_value());
  ASSERT_EQ(twin->reported.values.size(), 3u);
  EXPECT_EQ(twin->reported.values[0], 10);
  EXPECT_EQ(twin->reported.values[1], 90);
  EXPECT_TRUE(core::absent(twin->reported.values[2]));
  EXPECT_EQ(twin->metadata, (std::vector<int64_t>{kT0, kT0, 0}));

  // New rows store the new signal, flag included.
  core::Telemetry second = blank(*v2, "up-1", 2, kT0 + 1000);
  second.values = {11, 91, 250};
  second.out_of_range = {2};
  new_store->write({{{second, 0.5}}, {twin_of(*v2, second, 2)}, {}, {}});
  h = new_store->history("up-1", kT0, kT0 + 10'000);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1], (TelemetryRow{second, 0.5}));
  EXPECT_EQ(new_store->get_twin("up-1"), twin_of(*v2, second, 2));
  EXPECT_EQ(new_store->hourly("up-1", "oil_temp", kT0, kT0 + kHour),
            (std::vector<HourlyAggregate>{{kT0, 250, 250, 250, 1}}));

  // A reader still on the old catalog reads its signals and ignores the new one.
  h = old_store->history("up-1", kT0, kT0 + 10'000);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].t.values, (std::vector<double>{11, 91}));
  EXPECT_TRUE(h[1].t.out_of_range.empty());
  EXPECT_EQ(old_store->get_twin("up-1")->reported.values, (std::vector<double>{11, 91}));
}

}  // namespace
}  // namespace fleettwin::store
