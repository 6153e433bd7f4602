#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "codec/json.h"
#include "codec/json_writer.h"
#include "support/telemetry_samples.h"

using namespace fleettwin;
using namespace fleettwin::codec;
using namespace fleettwin::codec::testing;

namespace {

/// A telemetry payload as an ordered list of (key, raw JSON value) to bend one field at a time. Test thread.
class Payload {
 public:
  Payload() {
    const core::Telemetry t = sample_telemetry();
    add("car", "\"" + t.car + "\"");
    add("ts", std::to_string(t.ts));
    add("seq", std::to_string(t.seq));
    add("lat", num(t.lat));
    add("lon", num(t.lon));
    for (std::size_t i = 0; i < core::kSignalCount; ++i)
      add(std::string(core::kSignals[i].name), num(t.values[i]));
  }
  Payload& set(const std::string& key, const std::string& raw) {
    for (auto& [k, v] : _members) {
      if (k == key) v = raw;
    }
    return *this;
  }
  Payload& remove(const std::string& key) {
    std::erase_if(_members, [&](const auto& m) { return m.first == key; });
    return *this;
  }
  Payload& add(const std::string& key, const std::string& raw) {
    _members.emplace_back(key, raw);
    return *this;
  }
  std::string str() const {
    std::string s = "{";
    for (const auto& [k, v] : _members) s += (s.size() > 1 ? ",\"" : "\"") + k + "\":" + v;
    return s + "}";
  }

 private:
  static std::string num(double v) {
    std::string s;
    append_json_double(s, v);
    return s;
  }
  std::vector<std::pair<std::string, std::string>> _members;
};

/// What one decode call returned.
struct Outcome {
  bool ok;
  DecodeError error;
  core::Telemetry t;
};

Outcome decode(const std::string& json, std::size_t max_bytes = kDefaultMaxPayloadBytes,
               UnknownFields unknown = UnknownFields::kReject) {
  TelemetryDecoder d(max_bytes, catalog::builtin(), unknown);
  Outcome o;
  o.ok = d.decode(std::string_view(json), o.t, o.error);
  return o;
}

// Under the reject policy for unknown keys, so a test of a misspelt key sees it refused.
void expect_reject(const std::string& json, RejectReason reason,
                   const std::vector<std::string>& detail_has = {}) {
  const Outcome o = decode(json);
  ASSERT_FALSE(o.ok) << json;
  EXPECT_EQ(to_string(o.error.reason), to_string(reason)) << json << "\n" << o.error.detail;
  for (const auto& part : detail_has) {
    EXPECT_NE(o.error.detail.find(part), std::string::npos) << "'" << part << "' not in: " << o.error.detail;
  }
}

}  // namespace

TEST(TelemetryDecoder, DecodesTheFixture) {
  const std::string json = read_fixture("telemetry_valid.json");
  ASSERT_FALSE(json.empty());
  const Outcome o = decode(json);
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_EQ(o.t, sample_telemetry());
}

TEST(TelemetryDecoder, AcceptsAnyFieldOrderWhitespaceAndEscapedKeys) {
  Payload p;
  const std::string canonical = p.str();
  std::string reordered =
      "{\n  \"control_unit_firmware\" : 1042 ,\t" + canonical.substr(1, canonical.rfind(',') - 1) + "\r\n}";
  Outcome o = decode(reordered);
  ASSERT_TRUE(o.ok) << reordered << "\n" << o.error.detail;
  EXPECT_EQ(o.t, sample_telemetry());

  p.remove("speed").add("\\u0073peed", "22.2");  // JSON escapes in keys name the same field
  o = decode(p.str());
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_EQ(o.t.values[core::kSpeed], 22.2);
}

TEST(TelemetryDecoder, RejectionReasonStringsAreStable) {
  const std::vector<std::string> expected{"malformed",  "missing_field", "wrong_type",
                                          "non_finite", "out_of_range",  "oversized",
                                          "bad_car_id", "unknown_field", "duplicate_field"};
  std::vector<std::string> actual;
  for (auto r : kRejectReasons) actual.emplace_back(to_string(r));
  EXPECT_EQ(actual, expected);
}

TEST(TelemetryDecoder, RejectsMalformed) {
  expect_reject("", RejectReason::kMalformed, {"empty"});
  expect_reject("   ", RejectReason::kMalformed);
  expect_reject("not json", RejectReason::kMalformed);
  expect_reject("{\"car\":", RejectReason::kMalformed);
  expect_reject("[1,2,3]", RejectReason::kMalformed, {"not a JSON object", "array"});
  expect_reject("42", RejectReason::kMalformed, {"not a JSON object"});
  expect_reject("\"car\"", RejectReason::kMalformed, {"not a JSON object"});
  expect_reject(Payload().str() + " x", RejectReason::kMalformed);  // trailing garbage
  expect_reject(Payload().str() + "{}", RejectReason::kMalformed);  // two documents
  expect_reject(Payload().str() + "}", RejectReason::kMalformed);
  expect_reject(Payload().set("speed", "22.2,").str(), RejectReason::kMalformed);  // trailing comma
  expect_reject(Payload().set("speed", "NaN").str(), RejectReason::kMalformed);    // not JSON
  expect_reject(Payload().set("speed", "Infinity").str(), RejectReason::kMalformed);
  expect_reject(Payload().set("speed", "tru").str(), RejectReason::kMalformed);
  expect_reject(Payload().set("speed", "01").str(), RejectReason::kMalformed, {"speed", "01"});
  expect_reject(Payload().set("speed", "1.").str(), RejectReason::kMalformed, {"speed"});
  expect_reject(Payload().set("speed", "--1").str(), RejectReason::kMalformed, {"speed"});
  expect_reject(Payload().set("car", "\"car\xFF\"").str(), RejectReason::kMalformed, {"UTF-8"});
  expect_reject("{\"car\":\"car-1\"", RejectReason::kMalformed);
}

TEST(TelemetryDecoder, RequiresCarTsSeqAndBothCoordinatesButNoSignal) {
  expect_reject(Payload().remove("car").str(), RejectReason::kMissingField, {"\"car\""});
  expect_reject(Payload().remove("seq").str(), RejectReason::kMissingField, {"\"seq\""});
  expect_reject(Payload().remove("ts").str(), RejectReason::kMissingField, {"\"ts\""});
  expect_reject(Payload().remove("lon").str(), RejectReason::kMissingField, {"\"lon\"", "both lat and lon"});
  expect_reject("{}", RejectReason::kMissingField, {"\"car\""});
  // Any subset of the signals is a message; what it lacks is absent.
  Outcome o = decode(Payload().remove("control_unit_firmware").remove("speed").str());
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_TRUE(core::absent(o.t.values[core::kControlUnitFirmware]));
  EXPECT_TRUE(core::absent(o.t.values[core::kSpeed]));
  EXPECT_EQ(o.t.values[core::kCoolantTemp], sample_telemetry().values[core::kCoolantTemp]);
  o = decode("{\"car\":\"c1\",\"ts\":5,\"seq\":1}");
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_FALSE(o.t.has_position());
  EXPECT_EQ(o.t.values.size(), core::kSignalCount);
  for (double v : o.t.values) EXPECT_TRUE(core::absent(v));
}

TEST(TelemetryDecoder, RejectsWrongTypes) {
  expect_reject(Payload().set("tire_pressure_1_1", "31.5").str(), RejectReason::kWrongType,
                {"tire_pressure_1_1", "integer", "31.5"});
  expect_reject(Payload().set("speed", "\"22\"").str(), RejectReason::kWrongType, {"speed", "\"22\""});
  expect_reject(Payload().set("coolant_temp", "true").str(), RejectReason::kWrongType,
                {"coolant_temp", "true"});
  expect_reject(Payload().set("lat", "null").str(), RejectReason::kWrongType, {"lat", "null"});
  expect_reject(Payload().set("lon", "[1]").str(), RejectReason::kWrongType, {"lon", "array"});
  expect_reject(Payload().set("ts", "{}").str(), RejectReason::kWrongType, {"ts", "object"});
  expect_reject(Payload().set("seq", "1.5").str(), RejectReason::kWrongType, {"seq", "1.5"});
  expect_reject(Payload().set("ts", "\"1718000000123\"").str(), RejectReason::kWrongType, {"ts"});
  expect_reject(Payload().set("car", "42").str(), RejectReason::kWrongType, {"car", "string", "42"});
  expect_reject(Payload().set("control_unit_firmware", "1042.000001").str(), RejectReason::kWrongType);
}

TEST(TelemetryDecoder, AcceptsIntegersForDoublesAndWholeDoublesForIntegers) {
  Outcome o = decode(Payload().set("speed", "22").set("lat", "-3").str());
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_EQ(o.t.values[core::kSpeed], 22.0);
  EXPECT_EQ(o.t.lat, -3.0);
  // Python's json.dumps writes floats as 31.0: a whole value is accepted for an int signal.
  o = decode(Payload().set("tire_pressure_1_1", "31.0").set("seq", "7e2").str());
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_EQ(o.t.values[core::kTirePressure11], 31.0);
  EXPECT_EQ(o.t.seq, 700);
}

TEST(TelemetryDecoder, RejectsNumbersOverflowingDouble) {
  expect_reject(Payload().set("speed", "1e400").str(), RejectReason::kNonFinite, {"speed", "1e400"});
  expect_reject(Payload().set("lat", "-1e999").str(), RejectReason::kNonFinite, {"lat"});
  expect_reject(Payload().set("tire_pressure_2_2", "1e309").str(), RejectReason::kNonFinite,
                {"tire_pressure_2_2"});
  // A huge number in a field after an unknown one: the unknown field is what gets reported.
  expect_reject(Payload().add("extra", "1").add("speed2", "1e400").str(), RejectReason::kUnknownField,
                {"extra"});
  // Underflow is not an error: 1e-400 is 0.
  expect_reject(Payload().set("speed", "1e-400").str() + "x", RejectReason::kMalformed);
  const Outcome o = decode(Payload().set("speed", "1e-400").str());
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_EQ(o.t.values[core::kSpeed], 0.0);
}

TEST(TelemetryDecoder, KeepsAndFlagsImplausibleReadingsButRejectsABadEnvelope) {
  // A reading outside its plausible range is kept, with its index in out_of_range (ascending).
  Outcome o = decode(Payload()
                         .set("speed", "100.5")
                         .set("coolant_temp", "-40.01")
                         .set("tire_pressure_1_2", "101")
                         .set("control_unit_firmware", "100001")
                         .str());
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_EQ(o.t.values[core::kSpeed], 100.5);
  EXPECT_EQ(o.t.values[core::kTirePressure12], 101);
  EXPECT_EQ(o.t.out_of_range, (std::vector<uint16_t>{core::kCoolantTemp, core::kSpeed, core::kTirePressure12,
                                                     core::kControlUnitFirmware}));
  // Written in another order, the flags still come out sorted.
  o = decode("{\"car\":\"c1\",\"ts\":5,\"seq\":1,\"speed\":-1,\"coolant_temp\":999}");
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_EQ(o.t.out_of_range, (std::vector<uint16_t>{core::kCoolantTemp, core::kSpeed}));
  // Far beyond any plausible range, up to 64 unsigned bits, a number is still a (flagged) reading.
  o = decode(Payload().set("speed", "1e300").set("tire_pressure_1_1", "18446744073709551615").str());
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_TRUE(o.t.flagged(core::kSpeed));
  EXPECT_TRUE(o.t.flagged(core::kTirePressure11));
  // An integer literal no 64-bit type holds is not a number the payload can be trusted with.
  expect_reject(Payload().set("speed", "123456789012345678901234567890").str(), RejectReason::kOutOfRange,
                {"speed", "64 bits"});
  // The envelope has no such leeway: a message that cannot be placed or ordered is refused.
  expect_reject(Payload().set("lat", "90.000001").str(), RejectReason::kOutOfRange, {"lat"});
  expect_reject(Payload().set("lon", "-180.5").str(), RejectReason::kOutOfRange, {"lon"});
  expect_reject(Payload().set("seq", "0").str(), RejectReason::kOutOfRange, {"seq", "0"});
  expect_reject(Payload().set("seq", "-5").str(), RejectReason::kOutOfRange, {"seq"});
  expect_reject(Payload().set("ts", "0").str(), RejectReason::kOutOfRange, {"ts"});
  expect_reject(Payload().set("ts", "-1718000000123").str(), RejectReason::kOutOfRange, {"ts"});
  expect_reject(Payload().set("seq", "18446744073709551615").str(), RejectReason::kOutOfRange, {"seq"});
  expect_reject(Payload().set("seq", "1e30").str(), RejectReason::kOutOfRange, {"seq"});
}

TEST(TelemetryDecoder, FlagsExactlyTheReadingsBeyondEachBound) {
  for (std::size_t i = 0; i < core::kSignalCount; ++i) {
    const auto& s = core::kSignals[i];
    const std::string name(s.name);
    for (double edge : {s.min, s.max}) {
      std::string text;
      append_json_double(text, edge);
      const Outcome o = decode(Payload().set(name, text).str());
      ASSERT_TRUE(o.ok) << name << "=" << text << ": " << o.error.detail;
      EXPECT_EQ(o.t.values[i], edge);
      EXPECT_FALSE(o.t.flagged(i)) << name << "=" << text;
    }
    // An int signal's next step is a whole number away (just past it would be a fraction: wrong type).
    const double step = s.type == core::SignalType::kInt ? 1 : 0;
    for (double beyond : {step ? s.min - step : std::nextafter(s.min, -1e300),
                          step ? s.max + step : std::nextafter(s.max, 1e300)}) {
      std::string text;
      append_json_double(text, beyond);
      const Outcome o = decode(Payload().set(name, text).str());
      ASSERT_TRUE(o.ok) << name << "=" << text << ": " << o.error.detail;
      EXPECT_EQ(o.t.out_of_range, std::vector<uint16_t>{static_cast<uint16_t>(i)}) << name << "=" << text;
    }
    if (s.type == core::SignalType::kInt) {
      expect_reject(Payload().set(name, "1.5").str(), RejectReason::kWrongType, {name});
    }
  }
  for (const char* lat : {"-90", "90"}) EXPECT_TRUE(decode(Payload().set("lat", lat).str()).ok) << lat;
  for (const char* lon : {"-180", "180"}) EXPECT_TRUE(decode(Payload().set("lon", lon).str()).ok) << lon;
  const Outcome o = decode(Payload().set("seq", "1").set("ts", "1").str());
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.t.seq, 1);
  EXPECT_EQ(o.t.ts, 1);
  EXPECT_TRUE(decode(Payload().set("seq", "9223372036854775807").str()).ok);
}

TEST(TelemetryDecoder, RejectsOversizedBeforeParsing) {
  const std::string json = Payload().str();
  EXPECT_TRUE(decode(json, json.size()).ok);
  // Over the limit by one byte: refused even though it is valid JSON...
  Outcome o = decode(json + " ", json.size());
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error.reason, RejectReason::kOversized);
  EXPECT_NE(o.error.detail.find(std::to_string(json.size() + 1)), std::string::npos) << o.error.detail;
  // ...and garbage over the limit is oversized, not malformed: the size check comes first.
  o = decode(std::string(20000, 'x'));
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error.reason, RejectReason::kOversized);
  EXPECT_EQ(TelemetryDecoder().max_bytes(), 16384u);
}

TEST(TelemetryDecoder, LargeLimitGrowsItsBuffersOnFirstUse) {
  TelemetryDecoder d(1 << 20);
  const std::string json = Payload().str() + std::string(200000, ' ');  // valid: trailing whitespace
  core::Telemetry t;
  DecodeError e;
  ASSERT_TRUE(d.decode(std::string_view(json), t, e)) << e.detail;
  EXPECT_EQ(t, sample_telemetry());
  std::string roomy = json;
  roomy.reserve(json.size() + kJsonPadding);
  ASSERT_TRUE(d.decode(roomy, t, e)) << e.detail;  // in place, parser grown
  ASSERT_TRUE(d.decode(Payload().str(), t, e)) << e.detail;
}

TEST(TelemetryDecoder, RejectsBadCarIds) {
  expect_reject(Payload().set("car", "\"car/1\"").str(), RejectReason::kBadCarId, {"car/1"});
  expect_reject(Payload().set("car", "\"\"").str(), RejectReason::kBadCarId);
  expect_reject(Payload().set("car", "\"car 1\"").str(), RejectReason::kBadCarId);
  expect_reject(Payload().set("car", "\"" + std::string(65, 'a') + "\"").str(), RejectReason::kBadCarId);
  expect_reject(Payload().set("car", "\"caf\\u00e9\"").str(), RejectReason::kBadCarId);
  EXPECT_TRUE(decode(Payload().set("car", "\"" + std::string(64, 'a') + "\"").str()).ok);
}

TEST(TelemetryDecoder, RejectsUnknownAndDuplicateFields) {
  expect_reject(Payload().add("sped", "1").str(), RejectReason::kUnknownField, {"sped"});
  expect_reject(Payload().add("Speed", "1").str(), RejectReason::kUnknownField, {"Speed"});  // case matters
  expect_reject(Payload().add("extra", "{\"a\":[1,2]}").str(), RejectReason::kUnknownField, {"extra"});
  expect_reject(Payload().add("speed", "1").str(), RejectReason::kDuplicateField, {"speed"});
  // Under the default drop policy an unknown key is reported, not refused; the message is whole.
  Outcome dropped =
      decode(Payload().add("sped", "1").add("x", "[1]").str(), kDefaultMaxPayloadBytes, UnknownFields::kDrop);
  ASSERT_TRUE(dropped.ok) << dropped.error.detail;
  expect_reject(Payload().add("car", "\"car-00042\"").str(), RejectReason::kDuplicateField, {"car"});
  // A duplicate is refused even when its value is garbage of another kind: the duplication is reported.
  expect_reject(Payload().add("seq", "\"x\"").str(), RejectReason::kDuplicateField, {"seq"});
  // Untrusted key text is quoted and shortened in the message.
  Outcome o = decode(Payload().add(std::string(500, 'k'), "1").str());
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error.reason, RejectReason::kUnknownField);
  EXPECT_LT(o.error.detail.size(), 120u);
  o = decode(Payload().add("bad\\nkey", "1").str());
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error.detail.find('\n'), std::string::npos) << o.error.detail;
  EXPECT_NE(o.error.detail.find("bad\\nkey"), std::string::npos) << o.error.detail;
}

TEST(TelemetryDecoder, DecoderIsReusableAfterRejections) {
  TelemetryDecoder d;
  core::Telemetry t;
  DecodeError e;
  EXPECT_FALSE(d.decode(Payload().set("speed", "\"x\"").str(), t, e));
  EXPECT_FALSE(d.decode(Payload().set("speed", "1e400").str(), t, e));
  EXPECT_EQ(e.reason, RejectReason::kNonFinite);
  ASSERT_TRUE(d.decode(Payload().str(), t, e)) << e.detail;
  EXPECT_EQ(t, sample_telemetry());
}

TEST(TelemetryDecoder, ZeroCopyAndCopyingPathsAgree) {
  TelemetryDecoder d;
  DecodeError e;
  const std::string json = Payload().str();

  std::string roomy = json;
  roomy.reserve(json.size() + kJsonPadding);  // decoded in place
  core::Telemetry a;
  ASSERT_TRUE(d.decode(roomy, a, e)) << e.detail;

  std::string tight;
  tight.reserve(json.size());
  tight = json;
  core::Telemetry b;
  ASSERT_TRUE(d.decode(tight, b, e)) << e.detail;

  core::Telemetry c;
  ASSERT_TRUE(d.decode_padded(roomy, roomy.capacity(), c, e)) << e.detail;
  core::Telemetry f;
  ASSERT_TRUE(d.decode_padded(json, json.size(), f, e)) << e.detail;  // too little padding: copies
  core::Telemetry g;
  ASSERT_TRUE(d.decode(json.c_str(), g, e)) << e.detail;

  EXPECT_EQ(a, sample_telemetry());
  EXPECT_EQ(b, a);
  EXPECT_EQ(c, a);
  EXPECT_EQ(f, a);
  EXPECT_EQ(g, a);
}

TEST(TelemetryJson, EncodesInCatalogOrderWithIntegerSignals) {
  std::string out = "x";
  encode_json(sample_telemetry(), out);
  EXPECT_TRUE(
      out.starts_with(R"(x{"car":"car-00042","ts":1718000000123,"seq":123456,"lat":48.137154,"lon":)"))
      << out;
  EXPECT_NE(out.find("\"tire_pressure_1_1\":32,"), std::string::npos) << out;
  EXPECT_NE(out.find("\"control_unit_firmware\":1042}"), std::string::npos) << out;
  EXPECT_NE(out.find("\"current_draw\":-3.1415926535,"), std::string::npos) << out;
  EXPECT_EQ(out, "x" + Payload().str());
}

TEST(TelemetryJson, RandomRoundTripsAreExact) {
  std::mt19937_64 rng(20240601);
  TelemetryDecoder d;
  DecodeError e;
  std::string json;
  core::Telemetry back;
  for (int i = 0; i < 20000; ++i) {
    const core::Telemetry t = random_telemetry(rng);
    json.clear();
    encode_json(t, json);
    ASSERT_TRUE(d.decode(json, back, e)) << json << "\n" << e.detail;
    ASSERT_TRUE(same_bits(back, t)) << json;
  }
}

TEST(TelemetryJson, NegativeZeroKeepsItsSign) {
  core::Telemetry t = sample_telemetry();
  t.values[core::kCurrentDraw] = -0.0;
  t.lon = -0.0;
  std::string json;
  encode_json(t, json);
  const Outcome o = decode(json);
  ASSERT_TRUE(o.ok) << o.error.detail;
  EXPECT_TRUE(std::signbit(o.t.values[core::kCurrentDraw]));
  EXPECT_TRUE(std::signbit(o.t.lon));
}

TEST(TelemetryJson, EscapesAnInvalidCarIdInsteadOfBreakingTheDocument) {
  core::Telemetry t = sample_telemetry();
  t.car = "bad\"id\n";
  std::string json;
  encode_json(t, json);
  EXPECT_NE(json.find(R"("car":"bad\"id\n")"), std::string::npos) << json;
  expect_reject(json, RejectReason::kBadCarId);  // valid JSON, refused only for the id
}

namespace {

std::shared_ptr<const catalog::Catalog> vss() {
  static const auto c = std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
  return c;
}

}  // namespace

TEST(TelemetryDecoder, ReadsAnyCatalogUnderItsNamesFieldFormsAndAliases) {
  const auto c = vss();
  TelemetryDecoder d(kDefaultMaxPayloadBytes, c, UnknownFields::kReject);
  core::Telemetry t;
  DecodeError e;
  const std::size_t speed = c->index_of("Vehicle.Speed"), moving = c->index_of("Vehicle.IsMoving"),
                    odo = c->index_of("Vehicle.TraveledDistance");
  // VSS names, identifier forms and cardata-v1 aliases all land on the same signals.
  for (
      const char* json : {
          R"({"car":"c1","ts":5,"seq":1,"Vehicle.Speed":12.5,"Vehicle.IsMoving":true,"odometer":3})",
          R"({"car":"c1","ts":5,"seq":1,"Vehicle_Speed":12.5,"Vehicle_IsMoving":1,"Vehicle_TraveledDistance":3})",
          R"({"car":"c1","ts":5,"seq":1,"speed":12.5,"is_moving":true,"odometer":3})",
      }) {
    ASSERT_TRUE(d.decode(std::string_view(json), t, e)) << json << ": " << e.detail;
    EXPECT_EQ(t.values.size(), c->size());
    EXPECT_EQ(t.values[speed], 12.5) << json;
    EXPECT_EQ(t.values[moving], 1) << json;
    EXPECT_EQ(t.values[odo], 3) << json;
    EXPECT_TRUE(core::absent(t.values[c->index_of("Vehicle.OBD.MAF")]));
  }
  // Two names of one signal in one payload are a duplicate, naming both.
  ASSERT_FALSE(
      d.decode(std::string_view(R"({"car":"c1","ts":5,"seq":1,"speed":1,"Vehicle.Speed":2})"), t, e));
  EXPECT_EQ(e.reason, RejectReason::kDuplicateField);
  EXPECT_NE(e.detail.find("Vehicle.Speed"), std::string::npos) << e.detail;
  // A bool is true/false or 0/1, nothing else.
  ASSERT_FALSE(d.decode(std::string_view(R"({"car":"c1","ts":5,"seq":1,"is_moving":2})"), t, e));
  EXPECT_EQ(e.reason, RejectReason::kWrongType);
  ASSERT_FALSE(d.decode(std::string_view(R"({"car":"c1","ts":5,"seq":1,"is_moving":"yes"})"), t, e));
  EXPECT_EQ(e.reason, RejectReason::kWrongType);
}

TEST(TelemetryDecoder, UnknownKeysAreDroppedAndReportedBoundedOrRejected) {
  TelemetryDecoder drop(kDefaultMaxPayloadBytes, catalog::builtin(), UnknownFields::kDrop);
  core::Telemetry t;
  DecodeError e;
  std::string json = R"({"car":"c1","ts":5,"seq":1,"speed":3,"cabin_temp":21)";
  for (int i = 0; i < 40; ++i) json += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
  json += "}";
  ASSERT_TRUE(drop.decode(std::string_view(json), t, e)) << e.detail;
  EXPECT_EQ(t.values[core::kSpeed], 3);
  EXPECT_EQ(drop.unknown_field_count(), 41u);
  ASSERT_EQ(drop.unknown_fields().size(), kMaxUnknownFields) << "kept per message: bounded";
  EXPECT_EQ(drop.unknown_fields()[0], "cabin_temp");
  // The next message starts afresh.
  ASSERT_TRUE(drop.decode(std::string_view(R"({"car":"c1","ts":5,"seq":2})"), t, e));
  EXPECT_EQ(drop.unknown_field_count(), 0u);
  EXPECT_TRUE(drop.unknown_fields().empty());
  TelemetryDecoder reject(kDefaultMaxPayloadBytes, catalog::builtin(), UnknownFields::kReject);
  ASSERT_FALSE(reject.decode(std::string_view(json), t, e));
  EXPECT_EQ(e.reason, RejectReason::kUnknownField);
  EXPECT_NE(e.detail.find("cabin_temp"), std::string::npos);
}

TEST(TelemetryJson, EncodesAnyCatalogUnderAnyNamesAndRoundTrips) {
  const auto c = vss();
  core::Telemetry t = codec::testing::empty_telemetry(c->size());
  t.values[c->index_of("Vehicle.Speed")] = 12.5;
  t.values[c->index_of("Vehicle.IsMoving")] = 1;
  t.values[c->index_of("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure")] = 31;
  std::string out;
  TelemetryEncoder(c).encode(t, out);
  EXPECT_EQ(out, R"({"car":"c1","ts":5,"seq":1,"Vehicle.Speed":12.5,)"
                 R"("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure":31,"Vehicle.IsMoving":true})");
  // Under the cardata aliases, as a simulator speaking the older names would.
  std::vector<std::string> names;
  for (const auto& s : c->signals()) names.push_back(s.aliases.at(0));
  std::string aliased;
  TelemetryEncoder(c, names).encode(t, aliased);
  EXPECT_NE(aliased.find(R"("speed":12.5)"), std::string::npos) << aliased;
  for (const auto& text : {out, aliased}) {
    TelemetryDecoder d(kDefaultMaxPayloadBytes, c, UnknownFields::kReject);
    core::Telemetry back;
    DecodeError e;
    ASSERT_TRUE(d.decode(std::string_view(text), back, e)) << e.detail;
    EXPECT_EQ(back, t) << text;
  }
}
