#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <random>

#include "codec/json.h"
#include "support/telemetry_samples.h"

using namespace fleettwin;
using namespace fleettwin::codec;
using codec::testing::random_telemetry;
using codec::testing::sample_telemetry;

namespace {

core::Twin sample_twin() {
  core::Twin t;
  t.id = "car-00042";
  t.version = 17;
  t.reported = sample_telemetry();
  t.has_reported = true;
  t.desired = {{"max_speed", "30"},
               {"mode", "\"eco\""},
               {"limits", R"({"rpm":[1000,6000.5],"on":true})"},
               {"note", R"("déjà \"vu\"\n")"}};
  t.reported_settings = {{"max_speed", "30"}, {"mode", "\"sport\""}, {"nothing", "null"}};
  for (std::size_t i = 0; i < core::kSignalCount; ++i)
    t.metadata[i] = 1718000000000 + static_cast<int64_t>(i);
  t.metadata[core::kSpeed] = 0;  // never changed
  t.health = {0.125, 0.5, core::HealthStatus::kWarning, 1717999999000, {"coolant_temp", "speed"}, "ae-v3"};
  t.online = true;
  t.first_seen = 1717000000000;
  t.last_seen = 1718000000123;
  t.messages = 123456;
  t.distance_km = 4321.0625;
  return t;
}

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& json) {
  simdjson::dom::element e;
  EXPECT_EQ(p.parse(json).get(e), simdjson::SUCCESS) << json;
  return e;
}

core::Twin round_trip(const core::Twin& t) {
  core::Twin back;
  back.id = "stale";  // the reader must replace, not merge
  back.desired["stale"] = "1";
  std::string error;
  EXPECT_TRUE(twin_from_json(twin_to_json(t), back, &error)) << error << "\n" << twin_to_json(t);
  return back;
}

}  // namespace

TEST(TwinJson, RoundTripIsExact) {
  const core::Twin t = sample_twin();
  EXPECT_EQ(round_trip(t), t);
}

TEST(TwinJson, RandomRoundTripsAreExact) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 500; ++i) {
    core::Twin t = sample_twin();
    t.reported = random_telemetry(rng);
    t.id = t.reported.car;
    t.version = static_cast<int64_t>(rng() >> 1);
    t.health.score = std::ldexp(static_cast<double>(rng() >> 11), -40);
    t.distance_km = std::ldexp(static_cast<double>(rng() >> 11), -30);
    t.metadata[rng() % core::kSignalCount] = -static_cast<int64_t>(rng() >> 2);
    t.health.status = static_cast<core::HealthStatus>(rng() % 4);
    t.online = rng() % 2;
    ASSERT_EQ(round_trip(t), t) << twin_to_json(t);
  }
}

TEST(TwinJson, HasTheDesignDocumentShape) {
  const core::Twin t = sample_twin();
  const std::string json = twin_to_json(t);
  simdjson::dom::parser p;
  const auto doc = parse(p, json);
  EXPECT_EQ(std::string_view(doc["_id"]), "car-00042");
  EXPECT_EQ(int64_t(doc["version"]), 17);
  EXPECT_EQ(double(doc["reported"]["coolant_temp"]), 90.5);
  EXPECT_EQ(int64_t(doc["reported"]["tire_pressure_1_1"]), 32);  // an int signal is an integer
  EXPECT_EQ(int64_t(doc["reported"]["ts"]), 1718000000123);
  EXPECT_EQ(int64_t(doc["reported"]["seq"]), 123456);
  EXPECT_EQ(doc["reported"]["car"].error(), simdjson::NO_SUCH_FIELD);  // implied by _id
  EXPECT_EQ(std::string_view(doc["reported"]["settings"]["mode"]), "sport");
  EXPECT_EQ(int64_t(doc["desired"]["max_speed"]), 30);
  EXPECT_EQ(std::string_view(doc["desired"]["mode"]), "eco");
  EXPECT_EQ(double(doc["desired"]["limits"]["rpm"].at(1)), 6000.5);
  // Keys whose desired value the car has not reported yet.
  std::vector<std::string> delta;
  for (auto d : doc["delta"].get_array()) delta.emplace_back(std::string_view(d));
  EXPECT_EQ(delta, (std::vector<std::string>{"limits", "mode", "note"}));
  EXPECT_EQ(int64_t(doc["metadata"]["coolant_temp"]), 1718000000000);
  EXPECT_EQ(doc["metadata"]["speed"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(std::string_view(doc["health"]["status"]), "warning");
  EXPECT_EQ(double(doc["health"]["threshold"]), 0.5);
  EXPECT_EQ(std::string_view(doc["health"]["top_signals"].at(1)), "speed");
  EXPECT_EQ(std::string_view(doc["health"]["model_version"]), "ae-v3");
  EXPECT_EQ(bool(doc["connection"]["online"]), true);
  EXPECT_EQ(int64_t(doc["connection"]["first_seen"]), 1717000000000);
  EXPECT_EQ(std::string_view(doc["location"]["type"]), "Point");
  EXPECT_EQ(double(doc["location"]["coordinates"].at(0)), 11.576124);  // GeoJSON: longitude first
  EXPECT_EQ(double(doc["location"]["coordinates"].at(1)), 48.137154);
  EXPECT_EQ(int64_t(doc["stats"]["messages"]), 123456);
  EXPECT_EQ(double(doc["stats"]["distance_km"]), 4321.0625);
}

TEST(TwinJson, TwinWithoutReportsHasNoLocationOrSignals) {
  core::Twin t;
  t.id = "car-7";
  t.desired = {{"mode", "\"eco\""}};
  const std::string json = twin_to_json(t);
  simdjson::dom::parser p;
  const auto doc = parse(p, json);
  EXPECT_TRUE(doc["location"].is_null());
  EXPECT_EQ(doc["reported"]["speed"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(doc["reported"]["ts"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(std::string_view(doc["health"]["status"]), "unknown");
  EXPECT_EQ(round_trip(t), t);

  t.reported.car = "car-7";  // an id set before any report survives too
  EXPECT_EQ(round_trip(t), t);
}

TEST(TwinJson, ReportedCarDifferentFromIdSurvives) {
  core::Twin t = sample_twin();
  t.reported.car = "car-other";
  EXPECT_EQ(round_trip(t), t);
}

TEST(TwinJson, NonFiniteScoreBecomesNullAndReadsBackAsNaN) {
  core::Twin t = sample_twin();
  t.health.score = std::numeric_limits<double>::quiet_NaN();
  const std::string json = twin_to_json(t);
  EXPECT_NE(json.find("\"score\":null"), std::string::npos);
  core::Twin back;
  ASSERT_TRUE(twin_from_json(json, back, nullptr));
  EXPECT_TRUE(std::isnan(back.health.score));
}

TEST(TwinJson, InvalidSettingTextIsStoredAsAStringNeverSpliced) {
  core::Twin t = sample_twin();
  t.desired = {{"evil", R"(1,"_id":"car-victim")"}, {"word", "eco"}, {"empty", ""}, {"padded", "  42 \n"}};
  const std::string json = twin_to_json(t);
  simdjson::dom::parser p;
  const auto doc = parse(p, json);
  EXPECT_EQ(std::string_view(doc["_id"]), "car-00042");
  EXPECT_EQ(std::string_view(doc["desired"]["evil"]), R"(1,"_id":"car-victim")");
  EXPECT_EQ(std::string_view(doc["desired"]["word"]), "eco");
  EXPECT_EQ(int64_t(doc["desired"]["padded"]), 42);
  core::Twin back;
  ASSERT_TRUE(twin_from_json(json, back, nullptr));
  EXPECT_EQ(back.desired["word"], "\"eco\"");  // now the JSON text of a string
  EXPECT_EQ(back.desired["padded"], "42");     // surrounding whitespace is not kept
  EXPECT_EQ(back.desired["empty"], "\"\"");
}

TEST(TwinJson, ReaderAcceptsUnknownFieldsWholeDoublesAndAnyOrder) {
  const std::string json =
      R"({"stats":{"messages":5.0,"distance_km":1},"future":{"x":[1,{"y":2}]},"_id":"car-1","version":3.0,)"
      R"("reported":{"ts":10,"seq":2,"speed":12,"new_signal":1},"delta":["ignored"]})";
  core::Twin t;
  std::string error;
  ASSERT_TRUE(twin_from_json(json, t, &error)) << error;
  EXPECT_EQ(t.id, "car-1");
  EXPECT_EQ(t.version, 3);
  EXPECT_EQ(t.messages, 5);
  EXPECT_EQ(t.distance_km, 1.0);
  EXPECT_TRUE(t.has_reported);
  EXPECT_EQ(t.reported.car, "car-1");
  EXPECT_EQ(t.reported.values[core::kSpeed], 12.0);
  EXPECT_TRUE(t.desired.empty());
}

TEST(TwinJson, ReaderErrorsNameTheProblem) {
  core::Twin t = sample_twin();
  const core::Twin before = t;
  std::string error;
  EXPECT_FALSE(twin_from_json("{\"_id\":", t, &error));
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  EXPECT_FALSE(twin_from_json("[1]", t, &error));
  EXPECT_NE(error.find("not a JSON object"), std::string::npos) << error;
  EXPECT_FALSE(twin_from_json(R"({"version":1})", t, &error));
  EXPECT_NE(error.find("_id"), std::string::npos) << error;
  EXPECT_FALSE(twin_from_json(R"({"_id":"c","version":"3"})", t, &error));
  EXPECT_NE(error.find("\"version\""), std::string::npos) << error;
  EXPECT_FALSE(twin_from_json(R"({"_id":"c","version":3.5})", t, &error));
  EXPECT_FALSE(twin_from_json(R"({"_id":"c","health":{"score":"high"}})", t, &error));
  EXPECT_NE(error.find("health.score"), std::string::npos) << error;
  EXPECT_FALSE(twin_from_json(R"({"_id":"c","location":{"type":"Point","coordinates":[1]}})", t, &error));
  EXPECT_NE(error.find("coordinates"), std::string::npos) << error;
  EXPECT_FALSE(twin_from_json(R"({"_id":"c","desired":[]})", t, &error));
  EXPECT_FALSE(twin_from_json(R"({"_id":"c","reported":{"speed":tru}})", t, &error));
  EXPECT_FALSE(twin_from_json(R"({"_id":"c"} x)", t, &error));
  EXPECT_FALSE(twin_from_json(R"({"_id":"c","health":{"top_signals":[1]}})", t, nullptr));
  EXPECT_EQ(t, before);  // a failed read leaves the output alone
}

TEST(AlertJson, RoundTripAndShape) {
  core::Alert a;
  a.id = "car-1:anomaly:1718000000000";
  a.car = "car-1";
  a.kind = "anomaly";
  a.raised = false;
  a.ts = 1718000000000;
  a.score = 3.25;
  a.threshold = 1.0 / 3;
  a.signals = {"coolant_temp", "engine_vibration_amplitude"};
  a.model_version = "ae-v\"3\"";
  a.acknowledged = true;
  a.feedback = core::kFeedbackFalse;
  a.feedback_note = "sensor \"glitch\"";
  a.feedback_ts = 1718000100000;
  const std::string json = alert_to_json(a);
  simdjson::dom::parser p;
  const auto doc = parse(p, json);
  EXPECT_EQ(std::string_view(doc["_id"]), a.id);
  EXPECT_EQ(bool(doc["raised"]), false);
  EXPECT_EQ(std::string_view(doc["signals"].at(1)), "engine_vibration_amplitude");
  EXPECT_EQ(std::string_view(doc["feedback"]), "false");
  core::Alert back;
  std::string error;
  ASSERT_TRUE(alert_from_json(json, back, &error)) << error;
  EXPECT_EQ(back, a);
  EXPECT_FALSE(alert_from_json(R"({"_id":"x","raised":"yes"})", back, &error));
  EXPECT_NE(error.find("raised"), std::string::npos) << error;
  EXPECT_FALSE(alert_from_json(R"({"car":"x"})", back, &error));
}

TEST(CommandJson, RoundTripAndShape) {
  core::Command c;
  c.id = "cmd-1";
  c.car = "car-1";
  c.name = "set";
  c.params_json = R"({"max_speed":30,"mode":"eco","nested":{"a":[1,2.5,null]}})";
  c.created = 1718000000000;
  c.expires = 1718000060000;
  c.status = "delivered";
  const std::string json = command_to_json(c);
  simdjson::dom::parser p;
  const auto doc = parse(p, json);
  EXPECT_EQ(int64_t(doc["params"]["max_speed"]), 30);  // the object itself, not a string
  EXPECT_EQ(std::string_view(doc["status"]), "delivered");
  core::Command back;
  std::string error;
  ASSERT_TRUE(command_from_json(json, back, &error)) << error;
  EXPECT_EQ(back, c);

  c.params_json.clear();
  c.expires = 0;
  c.status = "pending";
  const std::string empty = command_to_json(c);
  EXPECT_TRUE(parse(p, empty)["params"].is_null());
  ASSERT_TRUE(command_from_json(empty, back, &error)) << error;
  EXPECT_EQ(back, c);

  EXPECT_FALSE(command_from_json(R"({"_id":"x","created":"now"})", back, &error));
  EXPECT_NE(error.find("created"), std::string::npos) << error;
}

TEST(CommandJson, ScalarAndArrayParamsKeepTheirExactText) {
  for (const char* text : {"[1,2,3]", "\"reboot\"", "-1.5e-7", "true", "null", "{}", R"({"a" : 1})"}) {
    core::Command c;
    c.id = "cmd";
    c.params_json = text;
    core::Command back;
    std::string error;
    ASSERT_TRUE(command_from_json(command_to_json(c), back, &error)) << error;
    // "null" reads back as "no params": the one text that cannot survive.
    EXPECT_EQ(back.params_json, std::string_view(text) == "null" ? "" : text) << command_to_json(c);
  }
}

TEST(JsonText, ValidJsonValue) {
  for (const char* ok :
       {"1", " 1 ", "\"x\"", "{}", "[]", "null", "true", R"({"a":[1,{"b":null}]})", "-0.5e3"}) {
    EXPECT_TRUE(valid_json_value(ok)) << ok;
  }
  for (const char* bad : {"", " ", "eco", "1,2", "{", "[1,]", "\"unterminated", "1 2", "NaN", "01"}) {
    EXPECT_FALSE(valid_json_value(bad)) << bad;
  }
}

// ---- command acks and the settings table --------------------------------------------------------------

TEST(CommandAck, RoundTripsAndRefusesWhatIsNotAnAck) {
  core::CommandAck a{
      "c1", "car-00001", "acked", 1700000000000, {{"speed_limit_kmh", "80"}, {"service", "true"}}, ""};
  core::CommandAck back;
  std::string error;
  ASSERT_TRUE(codec::command_ack_from_json(codec::command_ack_to_json(a), back, &error)) << error;
  EXPECT_EQ(back, a);
  EXPECT_FALSE(codec::command_ack_from_json(R"({"id":"c1","status":"maybe"})", back, &error));
  EXPECT_NE(error.find("status"), std::string::npos) << error;
  EXPECT_FALSE(codec::command_ack_from_json(R"({"status":"acked"})", back, &error));
  EXPECT_NE(error.find("id"), std::string::npos) << error;
  EXPECT_FALSE(codec::command_ack_from_json("[1]", back, &error));
}

TEST(CommandSettings, EachCommandSetsItsSettingAndTheTableRoundTrips) {
  struct Case {
    const char* setting;
    const char* value;
    const char* command;
    const char* params;
  };
  for (const auto& c : {Case{"speed_limit_kmh", "90", "set_speed_limit", R"({"kmh":90})"},
                        Case{"speed_limit_kmh", "42.5", "set_speed_limit", R"({"kmh":42.5})"},
                        Case{"firmware_version", "1300", "update_firmware", R"({"version":1300})"},
                        Case{"service", "true", "schedule_service", "{}"}}) {
    core::Command cmd;
    std::string error;
    ASSERT_TRUE(codec::command_for_setting(c.setting, c.value, cmd, &error)) << c.setting << ": " << error;
    EXPECT_EQ(cmd.name, c.command);
    EXPECT_EQ(cmd.params_json, c.params);
    std::map<std::string, std::string> settings;
    ASSERT_TRUE(codec::command_settings(cmd, settings, &error)) << error;
    EXPECT_EQ(settings, (std::map<std::string, std::string>{{c.setting, c.value}}));
  }
}

TEST(CommandSettings, BadSettingsAndParametersAreRefusedWithTheReason) {
  core::Command cmd;
  std::string error;
  EXPECT_FALSE(codec::command_for_setting("speed_limit_kmh", "251", cmd, &error));
  EXPECT_NE(error.find("0..250"), std::string::npos) << error;
  EXPECT_FALSE(codec::command_for_setting("speed_limit_kmh", "\"fast\"", cmd, &error));
  EXPECT_FALSE(codec::command_for_setting("firmware_version", "12.5", cmd, &error));
  EXPECT_FALSE(codec::command_for_setting("service", "false", cmd, &error));
  EXPECT_FALSE(codec::command_for_setting("colour", "1", cmd, &error));
  EXPECT_NE(error.find("unknown setting 'colour'"), std::string::npos) << error;
  std::map<std::string, std::string> settings;
  EXPECT_FALSE(
      codec::command_settings({"x", "car-1", "self_destruct", "{}", 0, 0, "pending"}, settings, &error));
  EXPECT_NE(error.find("self_destruct"), std::string::npos) << error;
  EXPECT_FALSE(codec::command_settings({"x", "car-1", "set_speed_limit", R"({"mph":3})", 0, 0, "pending"},
                                       settings, &error));
}

TEST(TwinJson, FollowsTheCatalogAbsentLeftOutFlagsByName) {
  const auto vss = catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml");
  const std::size_t speed = vss.index_of("Vehicle.Speed");
  const std::size_t odometer = vss.index_of("Vehicle.TraveledDistance");
  core::Twin t;
  t.id = "car-1";
  t.has_reported = true;
  t.reported.car = "car-1";
  t.reported.ts = 5000;
  t.reported.seq = 5;
  t.reported.values.assign(vss.size(), core::kAbsent);
  t.reported.values[speed] = 120;  // above the range: flagged
  t.reported.values[odometer] = 1234.5;
  t.reported.out_of_range = {static_cast<uint16_t>(speed)};
  t.metadata.assign(vss.size(), 0);
  t.metadata[speed] = 5000;
  t.metadata[odometer] = 4000;
  const std::string json = twin_to_json(t, vss);
  simdjson::dom::parser p;
  const auto doc = parse(p, json);
  EXPECT_EQ(double(doc["reported"]["Vehicle.Speed"]), 120);
  EXPECT_EQ(double(doc["reported"]["Vehicle.TraveledDistance"]), 1234.5);
  EXPECT_EQ(doc["reported"]["Vehicle.OBD.MAF"].error(), simdjson::NO_SUCH_FIELD);  // absent: left out
  EXPECT_EQ(std::string_view(doc["reported"]["flags"].at(0)), "Vehicle.Speed");
  EXPECT_EQ(int64_t(doc["metadata"]["Vehicle.TraveledDistance"]), 4000);
  core::Twin back;
  std::string error;
  ASSERT_TRUE(twin_from_json(json, back, &error, vss)) << error;
  EXPECT_EQ(back, t);
  // No flags, no key; and a reader of another catalog takes the signals it knows by alias.
  t.reported.out_of_range.clear();
  EXPECT_EQ(twin_to_json(t, vss).find("\"flags\""), std::string::npos);
  ASSERT_TRUE(twin_from_json(R"({"_id":"c","reported":{"ts":1,"speed":3,"flags":["speed","nope"]}})", back,
                             &error, vss))
      << error;
  EXPECT_EQ(back.reported.values[speed], 3);
  EXPECT_EQ(back.reported.out_of_range, std::vector<uint16_t>{static_cast<uint16_t>(speed)});
  EXPECT_TRUE(core::absent(back.reported.values[odometer]));
  EXPECT_EQ(back.reported.values.size(), vss.size());
}
