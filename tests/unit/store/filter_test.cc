#include "store/filter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace fleettwin::store {
namespace {

size_t error_position(std::string_view text) {
  try {
    parse_filter(text);
  } catch (const FilterError& e) {
    EXPECT_NE(std::string(e.what()).find("position " + std::to_string(e.position)), std::string::npos)
        << e.what();
    return e.position;
  }
  ADD_FAILURE() << "no error for: " << text;
  return std::string::npos;
}

core::Twin sample() {
  core::Twin t;
  t.id = "car-7";
  t.version = 3;
  t.reported.seq = 42;
  t.reported.values[core::kSpeed] = 31.5;
  t.health.status = core::HealthStatus::kAnomaly;
  t.health.score = 4.5;
  t.online = true;
  t.messages = 42;
  return t;
}

TEST(Filter, ParsesTheIssueExample) {
  Filter f = parse_filter(R"(health.status == "anomaly" && reported.speed > 30)");
  ASSERT_EQ(f.kind, Filter::Kind::kAnd);
  ASSERT_EQ(f.children.size(), 2u);
  EXPECT_EQ(f.children[0].field.path, "health.status");
  EXPECT_EQ(std::get<std::string>(f.children[0].value), "anomaly");
  EXPECT_EQ(f.children[1].op, FilterOp::kGt);
  EXPECT_EQ(std::get<double>(f.children[1].value), 30);
  EXPECT_TRUE(matches(f, sample()));
}

TEST(Filter, PrecedenceNotAndOrParentheses) {
  core::Twin t = sample();
  EXPECT_TRUE(matches(parse_filter("version == 1 || version == 3 && stats.messages == 42"), t));
  EXPECT_FALSE(matches(parse_filter("(version == 1 || version == 3) && stats.messages == 1"), t));
  EXPECT_TRUE(matches(parse_filter("!(connection.online == false) && !!(id == \"car-7\")"), t));
  EXPECT_TRUE(matches(parse_filter("_id >= \"car-\" && reported.seq <= 42 && reported.seq < 43"), t));
  EXPECT_TRUE(matches(parse_filter("health.score != -1.5e3 && health.score >= 4.5"), t));
}

TEST(Filter, ToStringReadsBackEqual) {
  for (std::string_view text : {R"(health.status == "x\"y\\z" || !(reported.speed < 0.1))",
                                R"(connection.online == true && (version > 2 || version < -3))"}) {
    Filter f = parse_filter(text);
    EXPECT_EQ(parse_filter(to_string(f)), f) << text;
  }
}

TEST(Filter, MalformedFiltersNameThePosition) {
  EXPECT_EQ(error_position(""), 0u);
  EXPECT_EQ(error_position("health.status == \"ok\" && nosuch.field > 1"), 25u);
  EXPECT_EQ(error_position("reported.speed >"), 16u);
  EXPECT_EQ(error_position("reported.speed => 3"), 15u);
  EXPECT_EQ(error_position("reported.speed > 3 &&"), 21u);
  EXPECT_EQ(error_position("(reported.speed > 3"), 19u);
  EXPECT_EQ(error_position("reported.speed > 3)"), 18u);
  EXPECT_EQ(error_position("health.status == \"ok"), 17u);
  EXPECT_EQ(error_position("reported.speed > 1.2.3"), 17u);
  EXPECT_EQ(error_position("reported.speed > \"fast\""), 17u);  // type mismatch names the literal
  EXPECT_EQ(error_position("connection.online > true"), 18u);   // bools only compare for equality
  EXPECT_EQ(error_position("health.status == anomaly"), 17u);   // unquoted string
  EXPECT_EQ(error_position("reported.speed > 1e999"), 17u);     // not finite
}

// Regression (issue 17): the parser recursed once per '(' or '!' with no limit, so a filter of a few hundred
// thousand '(' overflowed an HTTP worker's stack; both the nesting and the text are bounded now.
TEST(Filter, NestingAndLengthAreBounded) {
  const std::string cmp = "reported.speed > 3";
  const auto nested = [&](int levels, const std::string& open, const std::string& close) {
    std::string text;
    for (int i = 0; i < levels; ++i) text += open;
    text += cmp;
    for (int i = 0; i < levels; ++i) text += close;
    return text;
  };
  EXPECT_NO_THROW(parse_filter(nested(kMaxFilterDepth, "(", ")")));
  EXPECT_NO_THROW(parse_filter(nested(kMaxFilterDepth, "!", "")));
  EXPECT_EQ(error_position(nested(kMaxFilterDepth + 1, "(", ")")), static_cast<size_t>(kMaxFilterDepth));
  EXPECT_EQ(error_position(nested(kMaxFilterDepth / 2 + 1, "!(", ")")), static_cast<size_t>(kMaxFilterDepth));
  try {
    parse_filter(std::string(kMaxFilterLength, '('));  // fails at the limit, long before the stack would
    ADD_FAILURE() << "no error";
  } catch (const FilterError& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than"), std::string::npos) << e.what();
  }
  // A wide filter is not deep: a long chain of && is one level, bounded by the length alone.
  std::string wide = cmp;
  while (wide.size() + 4 + cmp.size() <= kMaxFilterLength) wide += " && " + cmp;
  EXPECT_EQ(parse_filter(wide).children.size(), (wide.size() + 4) / (cmp.size() + 4));
  EXPECT_EQ(error_position(wide + std::string(kMaxFilterLength, ' ')), kMaxFilterLength);
}

TEST(Filter, InjectionAttemptsAreLiterals) {
  for (std::string lit : {"'; DROP TABLE twins; --", "$where", "{\"$gt\": \"\"}", "this.a == 1 || 1 == 1"}) {
    std::string quoted;
    for (char c : lit) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    Filter f = parse_filter("health.model_version == \"" + quoted + "\"");
    EXPECT_EQ(f.kind, Filter::Kind::kCompare);
    EXPECT_EQ(std::get<std::string>(f.value), lit);
  }
  // Outside quotes they are not values at all.
  EXPECT_EQ(error_position("health.status == $where"), 17u);
  EXPECT_EQ(error_position("$where == 1"), 0u);
}

TEST(Filter, NanMatchesOnlyNotEqual) {
  core::Twin t = sample();
  t.health.score = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(matches(parse_filter("health.score > 0"), t));
  EXPECT_FALSE(matches(parse_filter("health.score == 0"), t));
  EXPECT_TRUE(matches(parse_filter("health.score != 0"), t));
  EXPECT_TRUE(matches(parse_filter("!(health.score > 0)"), t));
}

TEST(Filter, SortAndCursorRoundTrip) {
  TwinSort s = parse_sort("-reported.speed");
  EXPECT_TRUE(s.descending);
  EXPECT_EQ(s.field.path, "reported.speed");
  EXPECT_TRUE(parse_sort("").by_id());
  EXPECT_THROW(parse_sort("-nosuch"), FilterError);
  core::Twin t = sample();
  std::string cursor = twin_cursor(s, t);
  TwinCursor c = decode_twin_cursor(s, cursor);
  EXPECT_EQ(std::get<double>(c.value), 31.5);
  EXPECT_EQ(c.id, "car-7");
  EXPECT_EQ(twin_cursor(parse_sort("id"), t), "car-7");
  EXPECT_THROW(decode_twin_cursor(s, "zz"), FilterError);
  EXPECT_THROW(decode_twin_cursor(s, "abc"), FilterError);
}

TEST(Filter, SignalsResolveByAnyNameOfTheCatalog) {
  catalog::SignalSpec speed;
  speed.name = "Vehicle.Speed";
  speed.max = 100;
  speed.aliases = {"speed"};
  catalog::SignalSpec cabin;
  cabin.name = "Vehicle.Cabin.Temperature";
  cabin.min = -50;
  cabin.max = 90;
  const catalog::Catalog vss("vss-test", 1, "", {cabin, speed});
  for (const char* name : {"reported.Vehicle.Speed", "reported.Vehicle_Speed", "reported.speed"}) {
    const auto f = find_filter_field(name, vss);
    ASSERT_TRUE(f.has_value()) << name;
    EXPECT_EQ(*f, (FilterField{"reported.Vehicle_Speed", FilterType::kNumber, 1})) << name;
  }
  EXPECT_EQ(find_filter_field("metadata.Vehicle.Cabin.Temperature", vss)->path,
            "metadata.Vehicle_Cabin_Temperature");
  EXPECT_FALSE(find_filter_field("reported.coolant_temp", vss).has_value());
  EXPECT_FALSE(find_filter_field("reported.Vehicle", vss).has_value());
  EXPECT_TRUE(find_filter_field("reported.seq", vss).has_value());
  EXPECT_EQ(filter_fields(vss).size(), filter_fields().size() - 2 * (core::kSignalCount - 2));

  core::Twin t;
  t.reported.values = {21.5, 40};
  t.metadata = {7, 0};
  EXPECT_THROW(parse_filter("reported.cabin_temp_nope != 1", vss), FilterError);
  EXPECT_TRUE(matches(
      parse_filter("reported.Vehicle.Speed > 30 && metadata.Vehicle_Cabin_Temperature == 7", vss), t));
  EXPECT_FALSE(matches(parse_filter("reported.speed > 40", vss), t));
  EXPECT_EQ(parse_sort("-reported.speed", vss).field.path, "reported.Vehicle_Speed");
  // A twin sized for fewer signals than the field's index reads the signal as absent.
  core::Twin small;
  small.reported.values = {1};
  small.metadata = {1};
  EXPECT_TRUE(
      std::isnan(std::get<double>(twin_field_value(small, *find_filter_field("reported.speed", vss)))));
}

}  // namespace
}  // namespace fleettwin::store
