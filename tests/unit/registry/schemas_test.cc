// AnomalyScore and Alert Avro codecs, checked against their own schema texts with the schema-driven reader.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "codec/avro.h"
#include "codec/schemas.h"
#include "registry/schema.h"

using namespace fleettwin;
using namespace fleettwin::codec;
using namespace fleettwin::registry;

namespace {

AnomalyScore sample_score() {
  return {"car-00042",   1718000000123, 123456, 1.75, 0.8, {{"coolant_temp", 1.25}, {"speed", -0.5}},
          "2024-06-01.3"};
}

core::Alert sample_alert() {
  return {"car-00042:anomaly:1718000000123",
          "car-00042",
          "anomaly",
          true,
          1718000000123,
          1.75,
          0.8,
          {"coolant_temp", "speed"},
          "2024-06-01.3",
          false,
          "",
          "",
          0};
}

std::string body_of(const std::string& framed) {
  int32_t id;
  std::string_view body;
  EXPECT_TRUE(read_confluent_header(framed, id, body));
  return std::string(body);
}

}  // namespace

TEST(RegistrySchemas, SchemasAreValidAvroAndCarTelemetryToo) {
  for (const std::string* s : {&anomaly_score_schema(), &alert_schema(), &car_telemetry_schema()}) {
    EXPECT_NO_THROW(AvroSchema::parse(*s)) << *s;
  }
  EXPECT_EQ(AvroSchema::parse(anomaly_score_schema()).root().name, "io.fleettwin.AnomalyScore");
  EXPECT_EQ(AvroSchema::parse(alert_schema()).root().name, "io.fleettwin.Alert");
}

TEST(RegistrySchemas, AnomalyScoreRoundTrip) {
  AnomalyScore in_alert = sample_score();
  in_alert.in_alert = true;
  for (AnomalyScore s : {sample_score(), in_alert, AnomalyScore{}}) {
    std::string out = "prefix";
    encode_avro_anomaly_score(s, 77, out);
    ASSERT_EQ(out.substr(0, 6), "prefix");
    out.erase(0, 6);
    AnomalyScore back;
    back.top_signals.push_back({"stale", 1});
    int32_t id = 0;
    std::string error;
    ASSERT_TRUE(decode_avro_anomaly_score(out, back, &id, &error)) << error;
    EXPECT_EQ(id, 77);
    EXPECT_EQ(back, s);
  }
}

TEST(RegistrySchemas, AnomalyScoreBytesFollowTheSchema) {
  std::string out;
  encode_avro_anomaly_score(sample_score(), 1, out);
  std::string json, error;
  ASSERT_TRUE(avro_datum_to_json(AvroSchema::parse(anomaly_score_schema()), body_of(out), json, &error))
      << error;
  EXPECT_EQ(
      json,
      R"({"car":"car-00042","ts":1718000000123,"seq":123456,"score":1.75,"threshold":0.8,)"
      R"("top_signals":[{"signal":"coolant_temp","deviation":1.25},{"signal":"speed","deviation":-0.5}],)"
      R"("model_version":"2024-06-01.3","in_alert":false})");
}

// A record written before in_alert existed ends after model_version: it decodes as not in alert, by this
// decoder and by a schema-driven reader of the new schema; the registry's rule accepts the evolution.
TEST(RegistrySchemas, AnAnomalyScoreWrittenBeforeInAlertDecodesAsNotInAlert) {
  std::ifstream in(std::string(FLEETTWIN_FIXTURES) + "/codec/anomaly_score_before_in_alert.avsc");
  std::stringstream older_text;
  older_text << in.rdbuf();
  ASSERT_FALSE(older_text.str().empty());
  const auto older = AvroSchema::parse(older_text.str());
  const auto newer = AvroSchema::parse(anomaly_score_schema());
  const auto problems = avro_read_problems(newer, older);
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_TRUE(avro_read_problems(older, newer).empty());  // and an old reader reads new records (FORWARD)

  AnomalyScore s = sample_score();
  s.in_alert = true;
  std::string now;
  encode_avro_anomaly_score(s, 1, now);
  ASSERT_EQ(now.back(), '\x01');  // the flag is the last byte
  const std::string before = now.substr(0, now.size() - 1);
  std::string json, error;
  ASSERT_TRUE(avro_datum_to_json(older, body_of(before), json, &error)) << error;  // what old writers wrote
  AnomalyScore back;
  back.in_alert = true;
  ASSERT_TRUE(decode_avro_anomaly_score(before, back, nullptr, &error)) << error;
  EXPECT_FALSE(back.in_alert);
  s.in_alert = false;
  EXPECT_EQ(back, s);

  std::string bad = now;
  bad.back() = '\x02';  // neither false nor true
  EXPECT_FALSE(decode_avro_anomaly_score(bad, back, nullptr, &error));
  EXPECT_NE(error.find("in_alert"), std::string::npos) << error;
}

TEST(RegistrySchemas, AlertRoundTrip) {
  core::Alert cleared = sample_alert();
  cleared.raised = false;
  cleared.signals.clear();
  for (const core::Alert& a : {sample_alert(), cleared, core::Alert{}}) {
    std::string out;
    encode_avro_alert(a, 5, out);
    core::Alert back;
    back.acknowledged = true;
    int32_t id = 0;
    std::string error;
    ASSERT_TRUE(decode_avro_alert(out, back, &id, &error)) << error;
    EXPECT_EQ(id, 5);
    EXPECT_EQ(back, a);
  }
  core::Alert acked = sample_alert();
  acked.acknowledged = true;
  std::string out;
  encode_avro_alert(acked, 5, out);
  core::Alert back;
  ASSERT_TRUE(decode_avro_alert(out, back, nullptr, nullptr));
  EXPECT_FALSE(back.acknowledged);  // store state, not part of the event
}

TEST(RegistrySchemas, AlertBytesFollowTheSchema) {
  std::string out;
  encode_avro_alert(sample_alert(), 1, out);
  std::string json, error;
  ASSERT_TRUE(avro_datum_to_json(AvroSchema::parse(alert_schema()), body_of(out), json, &error)) << error;
  EXPECT_EQ(json,
            R"({"id":"car-00042:anomaly:1718000000123","car":"car-00042","kind":"anomaly","raised":true,)"
            R"("ts":1718000000123,"score":1.75,"threshold":0.8,"signals":["coolant_temp","speed"],)"
            R"("model_version":"2024-06-01.3"})");
}

TEST(RegistrySchemas, DecodersRefuseEveryTruncationAndTrailingBytes) {
  std::string score, alert;
  encode_avro_anomaly_score(sample_score(), 1, score);
  encode_avro_alert(sample_alert(), 1, alert);
  // Without its last byte (in_alert) a score is a record of the schema before that field (test above).
  for (std::size_t n = 0; n + 1 < score.size(); ++n) {
    AnomalyScore s;
    std::string error;
    EXPECT_FALSE(decode_avro_anomaly_score(score.substr(0, n), s, nullptr, &error)) << n;
    EXPECT_FALSE(error.empty());
  }
  for (std::size_t n = 0; n < alert.size(); ++n) {
    core::Alert a;
    EXPECT_FALSE(decode_avro_alert(alert.substr(0, n), a, nullptr, nullptr)) << n;
  }
  AnomalyScore s;
  std::string error;
  EXPECT_FALSE(decode_avro_anomaly_score(score + "x", s, nullptr, &error));
  EXPECT_NE(error.find("trailing"), std::string::npos) << error;
  std::string bad_magic = alert;
  bad_magic[0] = 1;
  core::Alert a;
  EXPECT_FALSE(decode_avro_alert(bad_magic, a, nullptr, &error));
  EXPECT_NE(error.find("magic"), std::string::npos) << error;
}

TEST(RegistrySchemas, DecodersReadNegativeBlockCountsAndRefuseHugeOnes) {
  // The spec lets a writer put a negative count followed by the block's byte size; other writers do.
  std::string framed;
  append_confluent_header(framed, 1);
  char buf[128];
  AvroWriter w(buf);
  for (const char* s : {"id", "car", "anomaly"}) w.write_string(s);
  w.write_boolean(false);
  w.write_long(9);
  w.write_double(1);
  w.write_double(2);
  w.write_long(-2);
  w.write_long(4);
  w.write_string("a");
  w.write_string("b");
  w.write_long(0);
  w.write_string("m");
  framed.append(buf, w.position());
  core::Alert a;
  std::string error;
  ASSERT_TRUE(decode_avro_alert(framed, a, nullptr, &error)) << error;
  EXPECT_EQ(a.signals, (std::vector<std::string>{"a", "b"}));

  std::string huge;
  append_confluent_header(huge, 1);
  AvroWriter h(buf);
  h.write_string("car");
  h.write_long(1);
  h.write_long(1);
  h.write_double(0);
  h.write_double(0);
  h.write_long(1LL << 50);
  huge.append(buf, h.position());
  AnomalyScore s;
  EXPECT_FALSE(decode_avro_anomaly_score(huge, s, nullptr, &error));
  EXPECT_NE(error.find("block count"), std::string::npos) << error;
}

TEST(RegistrySchemas, NonFiniteScoresSurvive) {
  AnomalyScore s = sample_score();
  s.score = std::numeric_limits<double>::infinity();
  s.threshold = std::nan("");
  std::string out;
  encode_avro_anomaly_score(s, 1, out);
  AnomalyScore back;
  ASSERT_TRUE(decode_avro_anomaly_score(out, back, nullptr, nullptr));
  EXPECT_TRUE(std::isinf(back.score));
  EXPECT_TRUE(std::isnan(back.threshold));
}

// CarTelemetry is generated from the catalog; every change must stay readable by the registry's BACKWARD
// rule.
TEST(CarTelemetrySchema, ReadsWhatTheSchemaBeforeTheCatalogWrote) {
  std::ifstream in(std::string(FLEETTWIN_FIXTURES) + "/codec/car_telemetry_before_catalog.avsc");
  std::stringstream older;
  older << in.rdbuf();
  ASSERT_FALSE(older.str().empty());
  // int -> long and double -> [null, double] resolve; the new flags field has a default.
  const auto problems =
      avro_read_problems(AvroSchema::parse(car_telemetry_schema()), AvroSchema::parse(older.str()));
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(CarTelemetrySchema, ACompatibleCatalogChangeIsACompatibleSchemaChange) {
  const auto vss = std::make_shared<const catalog::Catalog>(
      catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
  // cardata-v1 renamed to VSS paths (aliases) plus new signals: the VSS reader reads cardata records.
  const auto problems = avro_read_problems(AvroSchema::parse(TelemetryAvro(vss).schema()),
                                           AvroSchema::parse(car_telemetry_schema()));
  EXPECT_TRUE(problems.empty()) << problems.front();
  // A unit change is caught by `catalog check`; a type change the Avro rules catch too.
  std::string yaml = catalog::to_yaml(*catalog::builtin());
  const auto at = yaml.find("{name: speed, type: double");
  ASSERT_NE(at, std::string::npos) << yaml;
  yaml.replace(at, std::string("{name: speed, type: double").size(), "{name: speed, type: bool");
  yaml.replace(yaml.find("min: 0, max: 100", at), std::string("min: 0, max: 100").size(), "min: 0, max: 1");
  const auto as_bool = std::make_shared<const catalog::Catalog>(catalog::parse_yaml(yaml, "t"));
  EXPECT_FALSE(avro_read_problems(AvroSchema::parse(TelemetryAvro(as_bool).schema()),
                                  AvroSchema::parse(car_telemetry_schema()))
                   .empty());
}
