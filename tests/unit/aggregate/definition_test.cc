#include "aggregate/definition.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

using namespace fleettwin::aggregate;

namespace {

const fleettwin::catalog::Catalog& catalog() { return *fleettwin::catalog::builtin(); }

std::string error_of(const std::string& yaml) {
  try {
    parse_yaml(yaml, "a.yaml", catalog());
    return "";
  } catch (const DefinitionError& e) {
    return e.what();
  }
}

// One aggregate with `fields` (YAML flow mapping entries) besides a name.
std::string one(const std::string& fields) { return "aggregates:\n  - {name: a, " + fields + "}\n"; }

}  // namespace

TEST(Definition, DefaultsAreTheReferenceCountAndAnHourlySummary) {
  const auto defs = defaults(catalog());
  ASSERT_EQ(defs.size(), 2U);
  EXPECT_EQ(defs[0].name, "events_5m");
  EXPECT_EQ(defs[0].grouping, Grouping::kCar);
  EXPECT_EQ(defs[0].size_ms, 5 * 60 * 1000);
  EXPECT_TRUE(defs[0].tumbling());
  EXPECT_TRUE(defs[0].signals.empty());
  // Per-car windows are final when they close: kept no longer than the grace.
  EXPECT_EQ(defs[0].allowed_lateness_ms, defs[0].grace_ms);
  EXPECT_EQ(defs[1].name, "summary_1h");
  EXPECT_EQ(defs[1].allowed_lateness_ms, defs[1].grace_ms);
  EXPECT_EQ(defs[1].size_ms, kMsPerHour);
  EXPECT_EQ(defs[1].columns(), (std::vector<std::string>{"speed_mean", "speed_max", "coolant_temp_max",
                                                         "coolant_temp_p95", "engine_vibration_amplitude_p95",
                                                         "battery_voltage_min", "battery_voltage_mean"}));
  EXPECT_EQ(defs[1].signals[0].signal, catalog().index_of("speed"));
}

TEST(Definition, ParsesEveryGroupingWindowAndFunction) {
  const auto defs = parse_yaml(R"(aggregates:
  - name: fleet_speed
    group: fleet
    window: {size: 1h, advance: 15m}
    grace: 2m
    allowed_lateness: 2h
    signals:
      speed: [count, min, max, mean, sum, p50, p95, p99, last]
  - name: by_site
    group: attribute
    attribute: site
    window: 60000
)",
                               "a.yaml", catalog());
  ASSERT_EQ(defs.size(), 2U);
  EXPECT_EQ(defs[0].grouping, Grouping::kFleet);
  EXPECT_EQ(defs[0].size_ms, kMsPerHour);
  EXPECT_EQ(defs[0].advance_ms, 15 * 60 * 1000);
  EXPECT_EQ(defs[0].grace_ms, 120000);
  EXPECT_EQ(defs[0].allowed_lateness_ms, 2 * kMsPerHour);
  EXPECT_EQ(defs[0].signals[0].functions.size(), 9U);
  EXPECT_EQ(defs[1].grouping, Grouping::kAttribute);
  EXPECT_EQ(defs[1].attribute, "site");
  EXPECT_EQ(defs[1].size_ms, 60000);
}

TEST(Definition, TheLatenessDefaultsToTheGraceForCarsAnd24HoursForGroups) {
  const auto defs = parse_yaml(R"(aggregates:
  - {name: own, group: car, window: 5m, grace: 30s}
  - {name: own_kept, group: car, window: 5m, grace: 30s, allowed_lateness: 2h}
  - {name: fleet, group: fleet, window: 5m, grace: 30s}
  - {name: site, group: attribute, attribute: site, window: 5m}
)",
                               "a.yaml", catalog());
  ASSERT_EQ(defs.size(), 4U);
  EXPECT_EQ(defs[0].allowed_lateness_ms, 30000);
  EXPECT_EQ(defs[1].allowed_lateness_ms, 2 * kMsPerHour);
  EXPECT_EQ(defs[2].allowed_lateness_ms, kDefaultAllowedLateness);
  EXPECT_EQ(defs[3].allowed_lateness_ms, kDefaultAllowedLateness);
}

TEST(Definition, DurationsTakeUnitsAndRefuseTheRest) {
  EXPECT_EQ(parse_duration("250", "f"), 250);
  EXPECT_EQ(parse_duration("250ms", "f"), 250);
  EXPECT_EQ(parse_duration("30s", "f"), 30000);
  EXPECT_EQ(parse_duration("7d", "f"), 7 * kMsPerDay);
  EXPECT_THROW(parse_duration("", "f"), DefinitionError);
  EXPECT_THROW(parse_duration("5 m", "f"), DefinitionError);
  EXPECT_THROW(parse_duration("5w", "f"), DefinitionError);
  EXPECT_THROW(parse_duration("-1s", "f"), DefinitionError);
  EXPECT_THROW(parse_duration("401d", "f"), DefinitionError);
  EXPECT_THROW(parse_duration("99999999999999999999", "f"), DefinitionError);
}

TEST(Definition, ErrorsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"aggregates: 3", "aggregates: expected a list"},
      {"other: 1", ".other: unknown key"},
      {"aggregates:\n  - {group: car, window: 5m}", "aggregates[0].name: missing"},
      {one("group: car, window: 5m, name2: x"), "aggregates[0].name2: unknown key"},
      {"aggregates:\n  - {name: Bad-Name, group: car, window: 5m}", "aggregates[0].name: expected [a-z0-9_]"},
      {one("group: site, window: 5m"), "aggregates[0].group: \"site\" is not one of car, fleet, attribute"},
      {one("group: attribute, window: 5m"), "aggregates[0].attribute: missing"},
      {one("group: car, attribute: site, window: 5m"), "aggregates[0].attribute: only with group: attribute"},
      {one("group: car"), "aggregates[0].window: missing"},
      {one("group: car, window: 5x"), "aggregates[0].window: "},
      {one("group: car, window: {size: 1h, advance: 7m}"),
       "aggregates[0].window.advance: must divide the size"},
      {one("group: car, window: {size: 1h, advance: 2h}"), "aggregates[0].window.advance: must be positive"},
      {one("group: car, window: {size: 1h, advance: 1s}"), "aggregates[0].window.advance: size / advance"},
      {one("group: car, window: 1h, allowed_lateness: 31d"),
       "aggregates[0].allowed_lateness: more than 30 days"},
      {one("group: fleet, window: 1h, grace: 2d"), "aggregates[0].grace: more than the allowed lateness"},
      {one("group: car, window: 1h, grace: 2d, allowed_lateness: 1d"),
       "aggregates[0].grace: more than the allowed lateness"},
      {one("group: car, window: 1h, grace: 31d"), "aggregates[0].grace: more than 30 days"},
      {one("group: car, window: 1h, signals: {warp_speed: [max]}"),
       "aggregates[0].signals.warp_speed: not a signal of the catalog cardata v1"},
      {one("group: car, window: 1h, signals: {speed: [median]}"),
       "aggregates[0].signals.speed[0]: \"median\" is not one of"},
      {one("group: car, window: 1h, signals: {speed: [max, max]}"),
       "aggregates[0].signals.speed[1]: listed twice"},
      {one("group: car, window: 1h, signals: {speed: []}"),
       "aggregates[0].signals.speed: expected a non-empty"},
      {"aggregates:\n  - {name: a, group: car, window: 1m}\n  - {name: a, group: fleet, window: 1m}",
       "aggregates[1].name: \"a\" twice"},
      {"aggregates: [", "not YAML"},
  };
  for (const auto& [yaml, want] : cases) {
    const std::string got = error_of(yaml);
    EXPECT_NE(got.find(want), std::string::npos) << yaml << "\n  gave: " << got;
    EXPECT_EQ(got.rfind("a.yaml", 0), 0U) << got;
  }
}

TEST(Definition, TheDocsShowTheDefaults) {
  std::ifstream in(std::string(FLEETTWIN_SOURCE_DIR) + "/docs/architecture.md");
  ASSERT_TRUE(in) << "docs/architecture.md";
  const std::string docs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(docs.find("```yaml\n" + std::string(default_yaml()) + "```\n"), std::string::npos)
      << "docs/architecture.md \"Windows and aggregates (engine)\" must show aggregate::default_yaml() as is";
}
