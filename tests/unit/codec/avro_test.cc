#include <gtest/gtest.h>
#include <simdjson.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <random>

#include "codec/avro.h"
#include "codec/json.h"
#include "core/hex.h"
#include "support/telemetry_samples.h"

using namespace fleettwin;
using namespace fleettwin::codec;
using namespace fleettwin::codec::testing;

namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  int high = -1;
  bool comment = false;  // '#' to the end of the line
  for (char c : hex) {
    if (c == '#' || c == '\n') comment = c == '#';
    if (comment || std::isspace(static_cast<unsigned char>(c))) continue;
    const int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high << 4 | v));
      high = -1;
    }
  }
  return out;
}

std::string encode(const core::Telemetry& t, int32_t schema_id = 1) {
  std::string out;
  encode_avro_telemetry(t, schema_id, out);
  return out;
}

std::string varint(int64_t v) {
  char buf[kMaxVarintBytes];
  AvroWriter w(buf);
  w.write_long(v);
  return std::string(buf, w.position());
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

}  // namespace

TEST(AvroSchema, IsBuiltFromTheCatalog) {
  const std::string& schema = car_telemetry_schema();
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_EQ(p.parse(schema).get(doc), simdjson::SUCCESS) << schema;
  EXPECT_EQ(std::string_view(doc["type"]), "record");
  EXPECT_EQ(std::string_view(doc["name"]), "CarTelemetry");
  EXPECT_EQ(std::string_view(doc["namespace"]), "io.fleettwin");
  const simdjson::dom::array fields = doc["fields"];
  ASSERT_EQ(fields.size(), 5 + core::kSignalCount + 1);
  EXPECT_EQ(std::string_view(fields.at(0)["name"]), "car");
  EXPECT_EQ(std::string_view(fields.at(0)["type"]), "string");
  EXPECT_EQ(std::string_view(fields.at(1)["name"]), "ts");
  EXPECT_EQ(std::string_view(fields.at(1)["type"]["type"]), "long");
  EXPECT_EQ(std::string_view(fields.at(1)["type"]["logicalType"]), "timestamp-millis");
  EXPECT_EQ(std::string_view(fields.at(2)["type"]), "long");
  // Position and every signal: a union of null and the value, null by default, so a message may lack them
  // and a record of an older catalog reads under a newer one.
  const auto expect_nullable = [](simdjson::dom::element f, std::string_view type) {
    EXPECT_EQ(std::string_view(f["type"].at(0)), "null") << f;
    EXPECT_EQ(std::string_view(f["type"].at(1)), type) << f;
    EXPECT_TRUE(f["default"].is_null()) << f;
  };
  EXPECT_EQ(std::string_view(fields.at(3)["name"]), "lat");
  EXPECT_EQ(std::string_view(fields.at(4)["name"]), "lon");
  for (std::size_t i : {3u, 4u}) expect_nullable(simdjson::dom::element(fields.at(i)), "double");
  for (std::size_t i = 0; i < core::kSignalCount; ++i) {
    const simdjson::dom::element f = fields.at(5 + i);
    EXPECT_EQ(std::string_view(f["name"]), core::kSignals[i].name);
    expect_nullable(f, core::kSignals[i].type == core::SignalType::kInt ? "long" : "double");
  }
  const auto flags = fields.at(5 + core::kSignalCount);
  EXPECT_EQ(std::string_view(flags["name"]), "flags");
  EXPECT_EQ(std::string_view(flags["type"]["type"]), "array");
  EXPECT_EQ(std::string_view(flags["type"]["items"]), "string");
  EXPECT_EQ(&car_telemetry_schema(), &schema);  // built once
}

TEST(AvroSchema, AnyCatalogGivesAFieldPerSignalWithItsOtherNamesAsAliases) {
  const auto vss = std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
  const TelemetryAvro avro(vss);
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_EQ(p.parse(avro.schema()).get(doc), simdjson::SUCCESS) << avro.schema();
  const simdjson::dom::array fields = doc["fields"];
  ASSERT_EQ(fields.size(), 5 + vss->size() + 1);
  const auto speed = fields.at(5 + vss->index_of("Vehicle.Speed"));
  EXPECT_EQ(std::string_view(speed["name"]), "Vehicle_Speed");
  EXPECT_EQ(std::string_view(speed["aliases"].at(0)), "speed");
  const auto moving = fields.at(5 + vss->index_of("Vehicle.IsMoving"));
  EXPECT_EQ(std::string_view(moving["type"].at(1)), "boolean");
  // A VSS record round-trips, absent signals and flags included.
  core::Telemetry t = codec::testing::empty_telemetry(vss->size());
  t.values[vss->index_of("Vehicle.Speed")] = 120;
  t.values[vss->index_of("Vehicle.IsMoving")] = 1;
  t.out_of_range = {static_cast<uint16_t>(vss->index_of("Vehicle.Speed"))};
  std::string out;
  avro.encode(t, 3, out);
  core::Telemetry back;
  std::string error;
  ASSERT_TRUE(avro.decode(out, back, nullptr, &error)) << error;
  EXPECT_EQ(back, t);
}

TEST(AvroSchema, MatchesTheCheckedInSchema) {
  // The registered text: a change here is a schema change and must be deliberate (and compatible).
  EXPECT_EQ(car_telemetry_schema(), trim(read_fixture("car_telemetry.avsc")));
}

TEST(AvroBinary, VarintsFollowTheSpec) {
  EXPECT_EQ(core::to_hex(varint(0)), "00");
  EXPECT_EQ(core::to_hex(varint(-1)), "01");
  EXPECT_EQ(core::to_hex(varint(1)), "02");
  EXPECT_EQ(core::to_hex(varint(-64)), "7f");
  EXPECT_EQ(core::to_hex(varint(64)), "8001");
  EXPECT_EQ(core::to_hex(varint(std::numeric_limits<int64_t>::max())), "feffffffffffffffff01");
  EXPECT_EQ(core::to_hex(varint(std::numeric_limits<int64_t>::min())), "ffffffffffffffffff01");
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10000; ++i) {
    const int64_t v = static_cast<int64_t>(rng()) >> (rng() % 64);
    const std::string bytes = varint(v);
    AvroReader r(bytes);
    int64_t back;
    ASSERT_TRUE(r.read_long(back));
    ASSERT_EQ(back, v);
    ASSERT_TRUE(r.at_end());
  }
}

TEST(AvroBinary, ReaderRefusesMalformedVarintsAndLengths) {
  int64_t v;
  EXPECT_FALSE(AvroReader(from_hex("80")).read_long(v));
  EXPECT_FALSE(AvroReader(from_hex("")).read_long(v));
  EXPECT_FALSE(AvroReader(from_hex("ffffffffffffffffff02")).read_long(v));  // 10th byte carries > 1 bit
  const std::string eleven_bytes = from_hex("8080808080808080808000");      // the reader only views its input
  AvroReader eleven(eleven_bytes);
  EXPECT_FALSE(eleven.read_long(v));
  EXPECT_NE(eleven.error(), nullptr);
  std::string_view s;
  EXPECT_FALSE(AvroReader(from_hex("01")).read_string(s));        // length -1
  EXPECT_FALSE(AvroReader(from_hex("0a616263")).read_string(s));  // length 5, 3 bytes
  const std::string abc = from_hex("06616263");
  EXPECT_TRUE(AvroReader(abc).read_string(s));
  EXPECT_EQ(s, "abc");
  int32_t i;
  EXPECT_FALSE(AvroReader(varint(int64_t{1} << 31)).read_int(i));
  EXPECT_TRUE(AvroReader(varint(-(int64_t{1} << 31))).read_int(i));
  EXPECT_EQ(i, std::numeric_limits<int32_t>::min());
  double d;
  EXPECT_FALSE(AvroReader(from_hex("00000000000000")).read_double(d));
  bool b;
  EXPECT_FALSE(AvroReader(from_hex("02")).read_boolean(b));
}

TEST(AvroTelemetry, ConfluentHeader) {
  const std::string out = encode(sample_telemetry(), 0x01020304);
  ASSERT_GE(out.size(), kConfluentHeaderSize);
  EXPECT_EQ(core::to_hex(out.substr(0, 5)), "0001020304");
  int32_t id = 0;
  std::string_view body;
  ASSERT_TRUE(read_confluent_header(out, id, body));
  EXPECT_EQ(id, 0x01020304);
  EXPECT_EQ(body.size(), out.size() - 5);
  EXPECT_EQ(core::to_hex(encode(sample_telemetry(), -2).substr(0, 5)), "00fffffffe");
  EXPECT_FALSE(read_confluent_header(from_hex("01000000010a"), id, body));
  EXPECT_FALSE(read_confluent_header(from_hex("00000000"), id, body));
}

TEST(AvroTelemetry, GoldenBytes) {
  // telemetry_valid.avro.hex: the sample written from car_telemetry.avsc (schema id 42); avro_c_interop_test
  // checks that the Apache Avro C library writes the same bytes for it.
  std::string json = read_fixture("telemetry_valid.json");
  TelemetryDecoder decoder;
  core::Telemetry t;
  DecodeError e;
  ASSERT_TRUE(decoder.decode(json, t, e)) << e.detail;
  const std::string golden = from_hex(read_fixture("telemetry_valid.avro.hex"));
  ASSERT_FALSE(golden.empty());
  EXPECT_EQ(core::to_hex(encode(t, 42)), core::to_hex(golden));
  core::Telemetry back;
  int32_t id = 0;
  std::string error;
  ASSERT_TRUE(decode_avro_telemetry(golden, back, &id, &error)) << error;
  EXPECT_EQ(id, 42);
  EXPECT_EQ(back, sample_telemetry());
}

TEST(AvroTelemetry, RandomRoundTripsAreBitExact) {
  std::mt19937_64 rng(11);
  std::string out;
  core::Telemetry back;
  std::string error;
  for (int i = 0; i < 20000; ++i) {
    const core::Telemetry t = random_telemetry(rng);
    const auto schema_id = static_cast<int32_t>(rng());
    out.clear();
    encode_avro_telemetry(t, schema_id, out);
    int32_t id = 0;
    ASSERT_TRUE(decode_avro_telemetry(out, back, &id, &error)) << error;
    ASSERT_EQ(id, schema_id);
    ASSERT_TRUE(same_bits(back, t));
  }
}

TEST(AvroTelemetry, AppendsAfterExistingBytes) {
  std::string out = "xyz";
  encode_avro_telemetry(sample_telemetry(), 1, out);
  const std::size_t first = out.size();
  encode_avro_telemetry(sample_telemetry(), 2, out);
  EXPECT_EQ(out.substr(0, 3), "xyz");
  core::Telemetry t;
  ASSERT_TRUE(decode_avro_telemetry(std::string_view(out).substr(3, first - 3), t, nullptr, nullptr));
  int32_t id = 0;
  ASSERT_TRUE(decode_avro_telemetry(std::string_view(out).substr(first), t, &id, nullptr));
  EXPECT_EQ(id, 2);
  EXPECT_EQ(t, sample_telemetry());
}

TEST(AvroTelemetry, EveryTruncationAndAnyTrailingByteIsAnError) {
  const std::string full = encode(sample_telemetry());
  core::Telemetry t;
  for (std::size_t n = 0; n < full.size(); ++n) {
    std::string error;
    // A copy of exactly n bytes, so a sanitizer build catches any read past the end.
    const std::string prefix = full.substr(0, n);
    EXPECT_FALSE(decode_avro_telemetry(prefix, t, nullptr, &error)) << n;
    EXPECT_FALSE(error.empty()) << n;
  }
  std::string error;
  EXPECT_FALSE(decode_avro_telemetry(full + '\0', t, nullptr, &error));
  EXPECT_NE(error.find("trailing"), std::string::npos) << error;
  std::string bad_magic = full;
  bad_magic[0] = 1;
  EXPECT_FALSE(decode_avro_telemetry(bad_magic, t, nullptr, &error));
  EXPECT_NE(error.find("magic"), std::string::npos) << error;
}

TEST(AvroTelemetry, GarbageNeverCrashesAndFailuresSayWhy) {
  std::mt19937_64 rng(5);
  const std::string valid = encode(sample_telemetry());
  core::Telemetry t;
  int failures = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string bytes;
    if (i % 2) {
      bytes.resize(rng() % 300);
      for (auto& c : bytes) c = static_cast<char>(rng());
      if (!bytes.empty()) bytes[0] = 0;
    } else {  // flip a few bytes of a valid message
      bytes = valid;
      for (int k = 0; k < 3; ++k) bytes[5 + rng() % (bytes.size() - 5)] = static_cast<char>(rng());
    }
    std::string error;
    if (!decode_avro_telemetry(bytes, t, nullptr, &error)) {
      ++failures;
      ASSERT_FALSE(error.empty());
    }
  }
  EXPECT_GT(failures, 10000);
}

TEST(AvroTelemetry, IntSignalsBeyondInt64AreSaturatedAndAbsentIsNull) {
  core::Telemetry t = sample_telemetry();
  t.values[core::kControlUnitFirmware] = 1e12;  // a long holds it exactly
  t.values[core::kTirePressure11] = -1e20;
  t.values[core::kTirePressure12] = core::kAbsent;
  t.values[core::kTirePressure21] = 1e20;
  t.lat = t.lon = core::kAbsent;
  core::Telemetry back;
  ASSERT_TRUE(decode_avro_telemetry(encode(t), back, nullptr, nullptr));
  EXPECT_EQ(back.values[core::kControlUnitFirmware], 1e12);
  EXPECT_EQ(back.values[core::kTirePressure11], static_cast<double>(std::numeric_limits<int64_t>::min()));
  EXPECT_TRUE(core::absent(back.values[core::kTirePressure12]));
  EXPECT_EQ(back.values[core::kTirePressure21], static_cast<double>(std::numeric_limits<int64_t>::max()));
  EXPECT_FALSE(back.has_position());
}

TEST(AvroTelemetry, RejectsABadUnionBranchAndFlagsThatNameNoSignal) {
  // Hand-built: the sample's bytes end with the last signal's value and the empty flags array (0).
  std::string bytes = encode(sample_telemetry());
  const std::string firmware = varint(1) + varint(1042) + varint(0);
  ASSERT_EQ(bytes.substr(bytes.size() - firmware.size()), firmware);
  bytes.resize(bytes.size() - firmware.size());
  core::Telemetry t;
  std::string error;
  EXPECT_FALSE(decode_avro_telemetry(bytes + varint(2) + varint(1042) + varint(0), t, nullptr, &error));
  EXPECT_NE(error.find("control_unit_firmware"), std::string::npos) << error;
  EXPECT_NE(error.find("union branch"), std::string::npos) << error;
  const auto flag = [&](std::string_view name) {
    std::string s = varint(static_cast<int64_t>(name.size()));
    return s.append(name);
  };
  EXPECT_FALSE(decode_avro_telemetry(bytes + firmware.substr(0, 3) + varint(1) + flag("nope") + varint(0), t,
                                     nullptr, &error));
  EXPECT_NE(error.find("names no signal"), std::string::npos) << error;
  EXPECT_FALSE(decode_avro_telemetry(
      bytes + firmware.substr(0, 3) + varint(2) + flag("speed") + flag("speed") + varint(0), t, nullptr,
      &error));
  EXPECT_NE(error.find("twice"), std::string::npos) << error;
  EXPECT_FALSE(
      decode_avro_telemetry(bytes + firmware.substr(0, 3) + varint(1000) + varint(0), t, nullptr, &error));
  EXPECT_NE(error.find("more flags than signals"), std::string::npos) << error;
  // The same flags in a block with its byte size (negative count) read as in a plain one.
  const std::string one = flag("speed");
  ASSERT_TRUE(decode_avro_telemetry(
      bytes + firmware.substr(0, 3) + varint(-1) + varint(static_cast<int64_t>(one.size())) + one + varint(0),
      t, nullptr, &error))
      << error;
  EXPECT_EQ(t.out_of_range, std::vector<uint16_t>{core::kSpeed});
}

TEST(AvroTelemetry, AFlagsBlockCountOfTheSmallestLongIsAnError) {
  // Found by fuzzing (tests/fuzz/corpus/avro_telemetry/crash-*): a negative count is negated to read the
  // block, and INT64_MIN has no positive counterpart (undefined behaviour before).
  std::string bytes = encode(sample_telemetry());
  bytes.resize(bytes.size() - 1);  // the empty flags array's 0
  core::Telemetry t;
  std::string error;
  EXPECT_FALSE(decode_avro_telemetry(bytes + varint(INT64_MIN) + varint(0) + varint(0), t, nullptr, &error));
  EXPECT_NE(error.find("bad block count"), std::string::npos) << error;
}
