// TelemetryReader across catalog versions: records of every writer schema registered for CarTelemetry read
// by Avro schema resolution into the reader catalog's Telemetry.
#include <gtest/gtest.h>

#include <cstring>

#include "catalog/catalog.h"
#include "codec/avro.h"
#include "registry/client.h"
#include "registry/protocol.h"
#include "registry/server.h"
#include "registry/telemetry_reader.h"
#include "support/telemetry_samples.h"
#include "unit/registry/embedded_registry_test.h"

using namespace fleettwin;

namespace {

const std::string kSubject = "fleet.telemetry-value";

std::shared_ptr<const catalog::Catalog> load(const std::string& path) {
  return std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/" + path));
}

std::shared_ptr<const catalog::Catalog> v2() { return load("tests/fixtures/catalogs/cardata-v2.yaml"); }

/// A writer schema of CarTelemetry written by hand, as a third-party producer might: `fields` is the JSON of
/// the fields array's content.
std::string writer_schema(const std::string& fields) {
  return R"({"type":"record","name":"CarTelemetry","namespace":"io.fleettwin","fields":[)" + fields + "]}";
}

class TelemetryResolutionTest : public registry::testing::EmbeddedRegistryTest {
 protected:
  int32_t register_catalog(const std::shared_ptr<const catalog::Catalog>& c) {
    return client->register_schema(kSubject, codec::TelemetryAvro(c).schema());
  }
};

/// The sample message under catalog `c`: cardata-v1's values, then `extra` for each further signal.
core::Telemetry sample_for(const catalog::Catalog& c, double extra) {
  core::Telemetry t = codec::testing::sample_telemetry();
  t.values.resize(c.size(), extra);
  return t;
}

}  // namespace

TEST_F(TelemetryResolutionTest, CardataV1RecordsReadByAVssReaderThroughAliases) {
  const auto vss = load("deploy/catalogs/vss.yaml");
  const int32_t id = register_catalog(catalog::builtin());
  std::string record;
  codec::encode_avro_telemetry(codec::testing::sample_telemetry(), id, record);

  registry::TelemetryReader reader(client, vss);
  core::Telemetry t;
  std::string error;
  ASSERT_TRUE(reader.read(record, t, &error)) << error;
  const auto sample = codec::testing::sample_telemetry();
  EXPECT_EQ(t.car, sample.car);
  EXPECT_EQ(t.seq, sample.seq);
  EXPECT_EQ(t.lat, sample.lat);
  ASSERT_EQ(t.values.size(), vss->size());
  std::size_t carried = 0;
  for (std::size_t i = 0; i < vss->size(); ++i) {
    const auto& s = (*vss)[i];
    const auto v1 = s.aliases.empty() ? std::nullopt : catalog::builtin()->find(s.aliases.front());
    if (v1) {
      EXPECT_EQ(t.values[i], sample.values[*v1]) << s.name;
      ++carried;
    } else {
      EXPECT_TRUE(core::absent(t.values[i])) << s.name << " is not in cardata-v1";
    }
  }
  EXPECT_EQ(carried, catalog::builtin()->size());
}

TEST_F(TelemetryResolutionTest, NewerWriterReadByAnOlderReaderSkipsTheSignalsItDoesNotKnow) {
  const auto newer = v2();
  register_catalog(catalog::builtin());
  const int32_t id = register_catalog(newer);  // BACKWARD: v2 reads v1 data, so the registry takes it
  core::Telemetry written = sample_for(*newer, 7);
  written.out_of_range = {0, 18};  // coolant_temp, and odometer which the old reader does not know
  std::string record;
  codec::TelemetryAvro(newer).encode(written, id, record);

  registry::TelemetryReader reader(client);
  core::Telemetry t;
  std::string error;
  ASSERT_TRUE(reader.read(record, t, &error)) << error;
  core::Telemetry expected = codec::testing::sample_telemetry();
  expected.out_of_range = {0};
  EXPECT_EQ(t, expected);
}

TEST_F(TelemetryResolutionTest, OlderWriterReadByANewerReaderLeavesTheNewSignalsAbsent) {
  const auto newer = v2();
  const int32_t old_id = register_catalog(catalog::builtin());
  const int32_t new_id = register_catalog(newer);
  std::string old_record, new_record;
  codec::encode_avro_telemetry(codec::testing::sample_telemetry(), old_id, old_record);
  codec::TelemetryAvro(newer).encode(sample_for(*newer, 12), new_id, new_record);

  registry::TelemetryReader reader(client, newer);
  core::Telemetry t;
  std::string error;
  ASSERT_TRUE(reader.read(old_record, t, &error)) << error;
  EXPECT_EQ(t, sample_for(*newer, core::kAbsent));
  ASSERT_TRUE(reader.read(new_record, t, &error)) << error;  // its own schema: the fast path
  EXPECT_EQ(t, sample_for(*newer, 12));
  // One plan per id: reading both again asks the registry nothing.
  const auto requests = server->request_count();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(reader.read(old_record, t, &error)) << error;
    EXPECT_TRUE(core::absent(t.values[18]));
    ASSERT_TRUE(reader.read(new_record, t, &error)) << error;
    EXPECT_EQ(t.values[18], 12);
  }
  EXPECT_EQ(server->request_count(), requests);
}

TEST_F(TelemetryResolutionTest, PromotesIntsAndFloatsHonoursWriterAliasesSkipsUnknownFieldsAndMapsFlags) {
  // A third-party writer: seq as an int, coolant_temp as a bare int (int -> double), speed as a float, a
  // tyre pressure as an int (int -> long), intake_air_temp under another name with the reader's as an alias,
  // fields of every complex type the reader does not know, and flags naming a known and an unknown field.
  const std::string schema = writer_schema(
      R"({"name":"car","type":"string"},{"name":"ts","type":"long"},{"name":"seq","type":"int"},)"
      R"({"name":"coolant_temp","type":"int"},{"name":"speed","type":["null","float"]},)"
      R"({"name":"extra","type":{"type":"record","name":"Extra","fields":[{"name":"a","type":"string"},)"
      R"({"name":"b","type":{"type":"array","items":"double"}},{"name":"c","type":{"type":"map","values":"int"}},)"
      R"({"name":"d","type":{"type":"fixed","name":"F","size":3}},{"name":"e","type":{"type":"enum","name":"E",)"
      R"("symbols":["X","Y"]}}]}},)"
      R"({"name":"tire_pressure_1_1","type":["null","int"]},)"
      R"({"name":"air_in","aliases":["intake_air_temp"],"type":["null","double"]},)"
      R"({"name":"flags","type":{"type":"array","items":"string"}})");
  const int32_t id = client->register_schema("third-party-value", schema);
  // AvroWriter writes no floats, so the record is put together by hand.
  std::string record;
  codec::append_confluent_header(record, id);
  const auto varint = [&](int64_t v) {
    char buf[codec::kMaxVarintBytes];
    codec::AvroWriter w(buf);
    w.write_long(v);
    record.append(buf, static_cast<std::size_t>(w.position() - buf));
  };
  const auto text = [&](std::string_view s) {
    varint(static_cast<int64_t>(s.size()));
    record.append(s);
  };
  const auto dbl = [&](double v) {
    char buf[8];
    codec::AvroWriter(buf).write_double(v);
    record.append(buf, 8);
  };
  text("car-7");
  varint(1718000000000);
  varint(42);
  varint(97);  // coolant_temp: int
  varint(1);   // speed: the float branch
  const float speed = 12.5F;
  char fbuf[4];
  std::memcpy(fbuf, &speed, 4);  // little-endian hosts only, as the rest of the suite
  record.append(fbuf, 4);
  text("skipped");  // extra.a
  varint(-2);       // extra.b: a block of 2 items with its byte size
  varint(16);
  dbl(1.5);
  dbl(2.5);
  varint(0);
  varint(1);  // extra.c: one entry
  text("k");
  varint(5);
  varint(0);
  record.append("xyz");  // extra.d
  varint(1);             // extra.e: Y
  varint(1);             // tire_pressure_1_1: the int branch
  varint(33);
  varint(1);  // air_in
  dbl(21.5);
  varint(2);  // flags
  text("coolant_temp");
  text("no_such_signal");
  varint(0);

  registry::TelemetryReader reader(client);
  core::Telemetry t;
  std::string error;
  ASSERT_TRUE(reader.read(record, t, &error)) << error;
  const auto& c = *catalog::builtin();
  EXPECT_EQ(t.car, "car-7");
  EXPECT_EQ(t.ts, 1718000000000);
  EXPECT_EQ(t.seq, 42);
  EXPECT_FALSE(t.has_position());
  EXPECT_EQ(t.values[c.index_of("coolant_temp")], 97.0);
  EXPECT_EQ(t.values[c.index_of("speed")], 12.5);
  EXPECT_EQ(t.values[c.index_of("tire_pressure_1_1")], 33.0);
  EXPECT_EQ(t.values[c.index_of("intake_air_temp")], 21.5);
  EXPECT_TRUE(core::absent(t.values[c.index_of("battery_voltage")]));
  EXPECT_EQ(t.out_of_range, std::vector<uint16_t>{static_cast<uint16_t>(c.index_of("coolant_temp"))});

  // Cut short anywhere, the record is refused with the field it stopped in, never misread.
  for (std::size_t n = codec::kConfluentHeaderSize; n < record.size(); n += 3) {
    EXPECT_FALSE(reader.read(std::string_view(record).substr(0, n), t, &error)) << n;
    EXPECT_NE(error.find("CarTelemetry: field"), std::string::npos) << error;
  }
  EXPECT_FALSE(reader.read(record + '\0', t, &error));
  EXPECT_NE(error.find("trailing"), std::string::npos) << error;
}

TEST_F(TelemetryResolutionTest, RefusesWriterSchemasItCannotResolveWithTheReason) {
  const std::string envelope = R"({"name":"car","type":"string"},{"name":"ts","type":"long"})";
  const struct {
    std::string schema;
    std::string reason;
  } cases[] = {
      {writer_schema(envelope), "no field seq"},
      {writer_schema(envelope + R"(,{"name":"seq","type":"string"})"),
       "field seq: the writer's string is not readable as the reader's long"},
      {writer_schema(envelope +
                     R"(,{"name":"seq","type":"long"},{"name":"coolant_temp","type":["null","string"]})"),
       "field coolant_temp: the writer's union is not readable as the reader's [null, double]"},
      {writer_schema(envelope +
                     R"(,{"name":"seq","type":"long"},{"name":"tire_pressure_1_1","type":"double"})"),
       "field tire_pressure_1_1: the writer's double is not readable as the reader's [null, long]"},
      {R"({"type":"record","name":"Other","fields":[{"name":"x","type":"long"}]})",
       "Other is not CarTelemetry"},
      {R"("string")", "not a record"},
  };
  registry::TelemetryReader reader(client);
  for (const auto& c : cases) {
    const int32_t id = client->register_schema("refused-" + std::to_string(&c - cases) + "-value", c.schema);
    std::string record;
    codec::append_confluent_header(record, id);
    core::Telemetry t;
    std::string error;
    EXPECT_FALSE(reader.read(record, t, &error));
    EXPECT_NE(error.find("schema id " + std::to_string(id) +
                         " cannot be read as CarTelemetry of catalog cardata v1"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find(c.reason), std::string::npos) << error;
    // The refusal is remembered (for TelemetryReader::kRetryRefusedAfter): no second registry request.
    const auto requests = server->request_count();
    std::string again;
    EXPECT_FALSE(reader.read(record, t, &again));
    EXPECT_EQ(again, error);
    EXPECT_EQ(server->request_count(), requests);
  }
}
