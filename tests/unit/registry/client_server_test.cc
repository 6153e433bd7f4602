// SchemaRegistryClient against EmbeddedRegistry over real HTTP on loopback, and every route of the embedded
// registry through a plain HTTP client. Each test starts its own registry on a free port.

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>

#include "codec/avro.h"
#include "codec/json_writer.h"
#include "codec/schemas.h"
#include "registry/client.h"
#include "registry/schema.h"
#include "registry/server.h"
#include "support/telemetry_samples.h"
#include "support/temp_dir.h"

using namespace fleettwin;
using namespace fleettwin::codec;
using namespace fleettwin::registry;

namespace {

constexpr const char* kJson = "application/vnd.schemaregistry.v1+json";

std::string record(const std::string& fields) {
  return R"({"type":"record","name":"Reading","namespace":"test","fields":[)" + fields + "]}";
}

const std::string kV1 = record(R"({"name":"car","type":"string"},{"name":"speed","type":"double"})");
const std::string kV2 = record(
    R"({"name":"car","type":"string"},{"name":"speed","type":"double"},{"name":"rpm","type":"int","default":0})");
const std::string kNoDefault =
    record(R"({"name":"car","type":"string"},{"name":"speed","type":"double"},{"name":"rpm","type":"int"})");
const std::string kStringToInt = record(R"({"name":"car","type":"int"},{"name":"speed","type":"double"})");

std::string schema_body(const std::string& schema) {
  std::string out;
  JsonWriter(out).begin_object().key("schema").string(schema).end_object();
  return out;
}

SchemaRegistryClientOptions short_timeouts() {
  SchemaRegistryClientOptions o;
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::milliseconds(5000);
  return o;
}

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
};

using fleettwin::testing::TempDir;

class RegistryHttp : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  void start(const std::string& journal = {}) {
    EmbeddedRegistryOptions o;
    o.journal_path = journal;
    registry = std::make_unique<EmbeddedRegistry>(o);
    registry->start();
    ASSERT_GT(registry->port(), 0);
  }

  SchemaRegistryClient client() { return SchemaRegistryClient(registry->url(), short_timeouts()); }

  Reply call(const std::string& method, const std::string& path, const std::string& body = {}) {
    httplib::Client c("127.0.0.1", registry->port());
    c.set_connection_timeout(1);
    c.set_read_timeout(5);
    httplib::Result r = method == "GET"    ? c.Get(path)
                        : method == "POST" ? c.Post(path, body, kJson)
                        : method == "PUT"  ? c.Put(path, body, kJson)
                                           : c.Delete(path);
    if (!r) return {};
    return {r->status, r->body, r->get_header_value("Content-Type")};
  }

  std::unique_ptr<EmbeddedRegistry> registry;
};

/// `call` throws a SchemaRegistryError of HTTP status `status` and, when given, of `error_code` and with a
/// message that contains `message_part`.
template <typename F>
void expect_registry_error(F&& call, int status, std::optional<int> error_code = std::nullopt,
                           std::string_view message_part = {}) {
  try {
    call();
    ADD_FAILURE() << "no SchemaRegistryError";
  } catch (const SchemaRegistryError& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    if (error_code) {
      EXPECT_EQ(e.error_code(), *error_code);
    }
    if (!message_part.empty()) {
      EXPECT_NE(e.message().find(message_part), std::string::npos) << e.message();
    }
  }
}

}  // namespace

TEST_F(RegistryHttp, RegisterAndFetchAreCachedBothWays) {
  SchemaRegistryClient c = client();
  const uint64_t before = registry->request_count();
  const int32_t id = c.register_schema("readings-value", kV1);
  EXPECT_EQ(id, 1);
  EXPECT_EQ(registry->request_count(), before + 1);
  EXPECT_EQ(c.register_schema("readings-value", kV1), id);
  EXPECT_EQ(c.get_schema(id), kV1);  // learned from the registration
  EXPECT_EQ(registry->request_count(), before + 1);

  SchemaRegistryClient fresh = client();
  EXPECT_EQ(fresh.get_schema(id), kV1);
  EXPECT_EQ(fresh.get_schema(id), kV1);
  EXPECT_EQ(registry->request_count(), before + 2);
}

TEST_F(RegistryHttp, SubjectForTopicIsTopicNameStrategy) {
  EXPECT_EQ(subject_for_topic("fleet.telemetry"), "fleet.telemetry-value");
}

TEST_F(RegistryHttp, FormattingDifferencesKeepTheIdAndVersion) {
  SchemaRegistryClient c = client();
  const int32_t id = c.register_schema("s-value", kV1);
  const std::string reformatted = R"(
    { "namespace": "test", "type": "record", "name": "Reading", "doc": "docs do not count",
      "fields": [ { "type": "string", "name": "car" },
                  { "name": "speed", "type": { "type": "double" } } ] })";
  EXPECT_EQ(c.register_schema("s-value", reformatted), id);
  EXPECT_EQ(call("GET", "/subjects/s-value/versions").body, "[1]");
  EXPECT_EQ(c.get_schema(id), kV1);  // the first text stays the id's text on the server
}

TEST_F(RegistryHttp, CompatibleEvolutionMakesANewVersionAndId) {
  SchemaRegistryClient c = client();
  EXPECT_EQ(c.register_schema("s-value", kV1), 1);
  EXPECT_EQ(c.register_schema("s-value", kV2), 2);
  EXPECT_EQ(call("GET", "/subjects/s-value/versions").body, "[1,2]");
  const Reply latest = call("GET", "/subjects/s-value/versions/latest");
  EXPECT_EQ(latest.status, 200);
  EXPECT_EQ(
      latest.body, R"({"subject":"s-value","version":2,"id":2,"schema":)" + [] {
        std::string s;
        append_json_string(s, kV2);
        return s;
      }() + "}");
  // Older versions stay registered.
  EXPECT_EQ(c.register_schema("s-value", kV1), 1);
}

TEST_F(RegistryHttp, IncompatibleSchemasAre409ThroughTheClient) {
  SchemaRegistryClient c = client();
  c.register_schema("s-value", kV1);
  for (const std::string& bad : {kNoDefault, kStringToInt}) {
    try {
      c.register_schema("s-value", bad);
      ADD_FAILURE() << "registered an incompatible schema";
    } catch (const SchemaRegistryError& e) {
      EXPECT_EQ(e.status(), 409);
      EXPECT_EQ(e.error_code(), 409);
      EXPECT_NE(e.message().find("incompatible"), std::string::npos) << e.message();
      EXPECT_NE(std::string(e.what()).find("409"), std::string::npos);
    }
  }
  try {
    c.register_schema("s-value", kNoDefault);
  } catch (const SchemaRegistryError& e) {
    EXPECT_NE(e.message().find("Reading.rpm: field added without a default"), std::string::npos)
        << e.message();
  }
  EXPECT_EQ(call("GET", "/subjects/s-value/versions").body, "[1]");
}

TEST_F(RegistryHttp, CompatibilityNoneAcceptsAnything) {
  SchemaRegistryClient c = client();
  c.register_schema("s-value", kV1);
  EXPECT_EQ(call("PUT", "/config/s-value", R"({"compatibility":"NONE"})").body,
            R"({"compatibility":"NONE"})");
  EXPECT_EQ(c.register_schema("s-value", kStringToInt), 2);
  // Other subjects keep the global BACKWARD.
  c.register_schema("t-value", kV1);
  EXPECT_THROW(c.register_schema("t-value", kStringToInt), SchemaRegistryError);
}

TEST_F(RegistryHttp, InvalidSchemasAre422) {
  SchemaRegistryClient c = client();
  expect_registry_error([&] { c.register_schema("s-value", R"({"type":"record","name":"R"})"); }, 422, 42201);
  Reply r = call("POST", "/subjects/s-value/versions", schema_body("{not json"));
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find(R"("error_code":42201)"), std::string::npos) << r.body;
  r = call("POST", "/subjects/s-value/versions", R"({"schema":""})");
  EXPECT_EQ(r.body, R"({"error_code":42201,"message":"Empty schema"})");
  r = call("POST", "/subjects/s-value/versions", R"({"schema":"\"int\"","schemaType":"PROTOBUF"})");
  EXPECT_EQ(r.status, 422);
  r = call("POST", "/subjects/s-value/versions",
           R"({"schema":"\"int\"","references":[{"name":"x","subject":"y","version":1}]})");
  EXPECT_EQ(r.status, 422);
  r = call("POST", "/subjects/s-value/versions", "this is not JSON");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(call("GET", "/subjects").body, "[]");
}

TEST_F(RegistryHttp, IdsAreGlobalAcrossSubjects) {
  SchemaRegistryClient c = client();
  EXPECT_EQ(c.register_schema("a-value", kV1), 1);
  EXPECT_EQ(c.register_schema("b-value", R"("string")"), 2);
  EXPECT_EQ(c.register_schema("c-value", kV1), 1);
  EXPECT_EQ(
      call("GET", "/subjects/c-value/versions/1").body.find(R"("version":1,"id":1)") != std::string::npos,
      true);
  EXPECT_EQ(call("GET", "/subjects").body, R"(["a-value","b-value","c-value"])");
}

TEST_F(RegistryHttp, LookupsAndNotFound) {
  SchemaRegistryClient c = client();
  c.register_schema("s-value", kV1);
  c.register_schema("s-value", kV2);

  Reply r = call("POST", "/subjects/s-value", schema_body(kV1));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("subject":"s-value","version":1,"id":1,"schema":)"), std::string::npos) << r.body;
  r = call("POST", "/subjects/nobody", schema_body(kV1));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("error_code":40401)"), std::string::npos) << r.body;
  r = call("POST", "/subjects/s-value", schema_body(R"("string")"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("error_code":40403)"), std::string::npos) << r.body;

  r = call("GET", "/schemas/ids/999");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("error_code":40403)"), std::string::npos);
  EXPECT_EQ(call("GET", "/schemas/ids/abc").status, 404);
  expect_registry_error([&] { c.get_schema(999); }, 404, 40403);
  EXPECT_EQ(call("GET", "/subjects/nobody/versions").status, 404);
  r = call("GET", "/subjects/s-value/versions/9");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("error_code":40402)"), std::string::npos);
  r = call("GET", "/subjects/s-value/versions/zero");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find(R"("error_code":42202)"), std::string::npos);
  EXPECT_EQ(call("GET", "/subjects/s-value/versions/0").status, 422);
}

TEST_F(RegistryHttp, EveryReadRoute) {
  SchemaRegistryClient c = client();
  c.register_schema("s-value", kV1);
  c.register_schema("s-value", kV2);
  std::string v1_quoted;
  append_json_string(v1_quoted, kV1);

  Reply r = call("GET", "/subjects");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"(["s-value"])");
  EXPECT_EQ(r.content_type, kJson);
  EXPECT_EQ(call("GET", "/subjects/").body, R"(["s-value"])");
  EXPECT_EQ(call("GET", "/subjects/s-value/versions").body, "[1,2]");
  EXPECT_EQ(call("GET", "/subjects/s-value/versions/1").body,
            R"({"subject":"s-value","version":1,"id":1,"schema":)" + v1_quoted + "}");
  EXPECT_EQ(call("GET", "/subjects/s-value/versions/-1").body.find(R"("version":2)") != std::string::npos,
            true);
  EXPECT_EQ(call("GET", "/subjects/s-value/versions/latest/schema").body, kV2);
  EXPECT_EQ(call("GET", "/subjects/s-value/versions/1/schema").body, kV1);
  EXPECT_EQ(call("GET", "/schemas/ids/1").body, R"({"schema":)" + v1_quoted + "}");
  EXPECT_EQ(call("GET", "/schemas/ids/2/schema").body, kV2);
  EXPECT_EQ(call("GET", "/schemas/types").body, R"(["AVRO"])");
  EXPECT_EQ(call("GET", "/").body, "{}");

  r = call("GET", "/no/such/route");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error_code":404,"message":"HTTP 404 Not Found"})");
  EXPECT_EQ(call("DELETE", "/subjects/s-value/versions").status, 405);
  EXPECT_EQ(call("PUT", "/subjects").status, 405);
}

TEST_F(RegistryHttp, CompatibilityRoutes) {
  SchemaRegistryClient c = client();
  c.register_schema("s-value", kV1);
  EXPECT_EQ(call("POST", "/compatibility/subjects/s-value/versions/latest", schema_body(kV2)).body,
            R"({"is_compatible":true})");
  EXPECT_EQ(call("POST", "/compatibility/subjects/s-value/versions/1", schema_body(kNoDefault)).body,
            R"({"is_compatible":false})");
  const Reply verbose =
      call("POST", "/compatibility/subjects/s-value/versions/latest?verbose=true", schema_body(kNoDefault));
  EXPECT_NE(verbose.body.find(R"("is_compatible":false,"messages":[")"), std::string::npos) << verbose.body;
  EXPECT_NE(verbose.body.find("Reading.rpm: field added without a default"), std::string::npos)
      << verbose.body;
  EXPECT_EQ(call("POST", "/compatibility/subjects/s-value/versions", schema_body(kStringToInt)).body,
            R"({"is_compatible":false})");
  EXPECT_EQ(call("POST", "/compatibility/subjects/nobody/versions/latest", schema_body(kV2)).status, 404);
  EXPECT_EQ(call("POST", "/compatibility/subjects/s-value/versions/7", schema_body(kV2)).status, 404);
  // Checking registers nothing.
  EXPECT_EQ(call("GET", "/subjects/s-value/versions").body, "[1]");
}

TEST_F(RegistryHttp, TransitiveAndForwardLevels) {
  SchemaRegistryClient c = client();
  const std::string a = record(R"({"name":"x","type":"int"})");
  const std::string b = record(R"({"name":"x","type":"int"},{"name":"y","type":"int","default":0})");
  const std::string c3 = record(R"({"name":"y","type":"int","default":0})");  // drops x
  const std::string d =
      record(R"({"name":"x","type":"int","default":1},{"name":"y","type":"int","default":0})");
  c.register_schema("s-value", a);
  c.register_schema("s-value", b);
  // FORWARD: the latest must read the new one; dropping x (no default in b) breaks it.
  call("PUT", "/config/s-value", R"({"compatibility":"FORWARD"})");
  EXPECT_EQ(call("POST", "/compatibility/subjects/s-value/versions/latest", schema_body(c3)).body,
            R"({"is_compatible":false})");
  EXPECT_EQ(call("POST", "/compatibility/subjects/s-value/versions/latest", schema_body(d)).body,
            R"({"is_compatible":true})");
  // BACKWARD_TRANSITIVE checks every version; an int -> long -> int round trip shows the difference.
  call("PUT", "/config/t-value", R"({"compatibility":"backward_transitive"})");
  c.register_schema("t-value", record(R"({"name":"x","type":"int"})"));
  c.register_schema("t-value", record(R"({"name":"x","type":"long"})"));
  c.register_schema("t-value", record(R"({"name":"x","type":"long"},{"name":"z","type":"int","default":0})"));
  EXPECT_EQ(call("POST", "/compatibility/subjects/t-value/versions",
                 schema_body(record(R"({"name":"x","type":"double"})")))
                .body,
            R"({"is_compatible":true})");
  call("PUT", "/config/t-value", R"({"compatibility":"FULL_TRANSITIVE"})");
  EXPECT_EQ(call("POST", "/compatibility/subjects/t-value/versions",
                 schema_body(record(R"({"name":"x","type":"double"})")))
                .body,
            R"({"is_compatible":false})");
}

TEST_F(RegistryHttp, ConfigRoutes) {
  EXPECT_EQ(call("GET", "/config").body, R"({"compatibilityLevel":"BACKWARD"})");
  Reply r = call("GET", "/config/s-value");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("error_code":40408)"), std::string::npos);
  EXPECT_EQ(call("GET", "/config/s-value?defaultToGlobal=true").body, R"({"compatibilityLevel":"BACKWARD"})");
  EXPECT_EQ(call("PUT", "/config", R"({"compatibility":"FULL"})").body, R"({"compatibility":"FULL"})");
  EXPECT_EQ(call("GET", "/config").body, R"({"compatibilityLevel":"FULL"})");
  EXPECT_EQ(call("PUT", "/config/s-value", R"({"compatibility":"NONE"})").status, 200);
  EXPECT_EQ(call("GET", "/config/s-value").body, R"({"compatibilityLevel":"NONE"})");
  r = call("PUT", "/config", R"({"compatibility":"SOMETIMES"})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find(R"("error_code":42203)"), std::string::npos);
  EXPECT_EQ(call("GET", "/config").body, R"({"compatibilityLevel":"FULL"})");
  // A subject with only a config is not listed.
  EXPECT_EQ(call("GET", "/subjects").body, "[]");
}

TEST_F(RegistryHttp, SubjectsNeedingEscapes) {
  SchemaRegistryClient c = client();
  const std::string subject = "odd/subject name?-value";
  const int32_t id = c.register_schema(subject, kV1);
  EXPECT_EQ(call("GET", "/subjects").body, R"(["odd/subject name?-value"])");
  EXPECT_EQ(call("GET", "/subjects/odd%2Fsubject%20name%3F-value/versions/latest/schema").body, kV1);
  EXPECT_EQ(c.get_schema(id), kV1);
}

TEST_F(RegistryHttp, PersistenceKeepsIdsAcrossRestarts) {
  TempDir dir("registry");
  const std::string journal = dir.file("registry/schemas.jsonl");  // the directory is created
  registry->stop();
  start(journal);
  {
    SchemaRegistryClient c = client();
    EXPECT_EQ(c.register_schema("a-value", kV1), 1);
    EXPECT_EQ(c.register_schema("b-value", R"("string")"), 2);
    EXPECT_EQ(c.register_schema("a-value", kV2), 3);
    call("PUT", "/config/b-value", R"({"compatibility":"NONE"})");
    call("PUT", "/config", R"({"compatibility":"FULL"})");
  }
  registry->stop();
  registry.reset();
  // A crash in the middle of a write leaves a torn last line; it is cut off on load.
  std::ofstream(journal, std::ios::app) << R"({"subject":"x","vers)";

  start(journal);
  SchemaRegistryClient c = client();
  EXPECT_EQ(c.get_schema(1), kV1);
  EXPECT_EQ(c.get_schema(3), kV2);
  EXPECT_EQ(call("GET", "/subjects").body, R"(["a-value","b-value"])");
  EXPECT_EQ(call("GET", "/subjects/a-value/versions").body, "[1,2]");
  EXPECT_EQ(call("GET", "/config").body, R"({"compatibilityLevel":"FULL"})");
  EXPECT_EQ(call("GET", "/config/b-value").body, R"({"compatibilityLevel":"NONE"})");
  EXPECT_EQ(c.register_schema("a-value", kV1), 1);
  EXPECT_EQ(c.register_schema("c-value", R"("long")"), 4);
  registry->stop();
  registry.reset();

  start(journal);
  EXPECT_EQ(client().register_schema("c-value", R"("long")"), 4);
  EXPECT_EQ(call("GET", "/subjects").body, R"(["a-value","b-value","c-value"])");
}

TEST_F(RegistryHttp, CorruptJournalRefusesToStart) {
  TempDir dir("registry");
  const std::string journal = dir.file("schemas.jsonl");
  std::ofstream(journal) << "{\"subject\":\"a\",\"version\":1,\"id\":5,\"schema\":\"\\\"int\\\"\"}\n";
  EmbeddedRegistryOptions o;
  o.journal_path = journal;
  EXPECT_THROW(EmbeddedRegistry{o}, std::runtime_error);
}

TEST_F(RegistryHttp, SecondRegistryOnABusyPortFailsToStart) {
  EmbeddedRegistryOptions o;
  o.port = registry->port();
  EmbeddedRegistry other(o);
  EXPECT_THROW(other.start(), std::runtime_error);
}

TEST_F(RegistryHttp, NoResponseIsStatusZero) {
  const std::string url = registry->url();
  registry->stop();
  SchemaRegistryClient c(url, short_timeouts());
  try {
    c.get_schema(1);
    ADD_FAILURE();
  } catch (const SchemaRegistryError& e) {
    EXPECT_EQ(e.status(), 0);
  }
}

TEST_F(RegistryHttp, BadBaseUrls) {
  EXPECT_THROW(SchemaRegistryClient("ftp://host:1"), std::invalid_argument);
  EXPECT_THROW(SchemaRegistryClient("http://"), std::invalid_argument);
  EXPECT_NO_THROW(SchemaRegistryClient("127.0.0.1:8081"));
  EXPECT_NO_THROW(SchemaRegistryClient("http://registry:8081/prefix/"));
}

TEST_F(RegistryHttp, ConcurrentClientsGetOneId) {
  constexpr int kThreads = 4;
  std::vector<int32_t> ids(kThreads);
  SchemaRegistryClient shared = client();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      SchemaRegistryClient own = client();
      for (int i = 0; i < 5; ++i) {
        ids[t] = (t % 2 ? own : shared).register_schema("s-value", kV1);
        EXPECT_EQ((t % 2 ? own : shared).get_schema(ids[t]), kV1);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int32_t id : ids) EXPECT_EQ(id, 1);
  EXPECT_EQ(call("GET", "/subjects/s-value/versions").body, "[1]");
}

// ---- the fleettwin schemas through the registry ---------------------------------------------------------

TEST_F(RegistryHttp, CarTelemetryRecordsDecodeWithTheSchemaFetchedById) {
  SchemaRegistryClient producer = client();
  const int32_t id = producer.register_schema(subject_for_topic("fleet.telemetry"), car_telemetry_schema());
  const core::Telemetry t = codec::testing::sample_telemetry();
  std::string record;
  encode_avro_telemetry(t, id, record);

  // A consumer that knows nothing but the bytes: the id in the header, the schema from the registry.
  int32_t read_id = 0;
  std::string_view body;
  ASSERT_TRUE(read_confluent_header(record, read_id, body));
  EXPECT_EQ(read_id, id);
  SchemaRegistryClient consumer = client();
  const AvroSchema schema = AvroSchema::parse(consumer.get_schema(read_id));
  std::string json, error;
  ASSERT_TRUE(avro_datum_to_json(schema, body, json, &error)) << error;
  EXPECT_EQ(
      json.rfind(
          R"({"car":"car-00042","ts":1718000000123,"seq":123456,"lat":{"double":48.137154},"lon":{"double":11.576124},)",
          0),
      0u)
      << json;
  // Avro's JSON encoding names a union's branch.
  EXPECT_NE(json.find(R"("tire_pressure_1_1":{"long":32})"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("control_unit_firmware":{"long":1042},"flags":[]})"), std::string::npos) << json;

  core::Telemetry back;
  ASSERT_TRUE(decode_avro_telemetry(record, back, nullptr, &error)) << error;
  EXPECT_EQ(back, t);
}

TEST_F(RegistryHttp, ScoreAndAlertSchemasRegisterAndDecodeById) {
  SchemaRegistryClient c = client();
  const int32_t score_id = c.register_schema(subject_for_topic("fleet.scores"), anomaly_score_schema());
  const int32_t alert_id = c.register_schema(subject_for_topic("fleet.alerts"), alert_schema());
  EXPECT_NE(score_id, alert_id);

  AnomalyScore s{"car-1", 1718000000000, 7, 0.5, 0.25, {{"coolant_temp", 0.4}, {"speed", 0.1}}, "m-3", true};
  std::string bytes;
  encode_avro_anomaly_score(s, score_id, bytes);
  int32_t id = 0;
  std::string_view body;
  ASSERT_TRUE(read_confluent_header(bytes, id, body));
  std::string json, error;
  ASSERT_TRUE(avro_datum_to_json(AvroSchema::parse(client().get_schema(id)), body, json, &error)) << error;
  EXPECT_EQ(json,
            R"({"car":"car-1","ts":1718000000000,"seq":7,"score":0.5,"threshold":0.25,)"
            R"("top_signals":[{"signal":"coolant_temp","deviation":0.4},{"signal":"speed","deviation":0.1}],)"
            R"("model_version":"m-3","in_alert":true})");

  // A subject that holds the schema before in_alert takes the one with it: the registry's rule accepts it.
  std::ifstream in(std::string(FLEETTWIN_FIXTURES) + "/codec/anomaly_score_before_in_alert.avsc");
  std::stringstream older;
  older << in.rdbuf();
  ASSERT_FALSE(older.str().empty());
  const int32_t old_id = c.register_schema("evolving-scores-value", older.str());
  int32_t new_id = 0;
  EXPECT_NO_THROW(new_id = c.register_schema("evolving-scores-value", anomaly_score_schema()));
  EXPECT_NE(new_id, old_id);

  core::Alert a{"car-1:anomaly:5", "car-1", "anomaly", true, 5, 0.9, 0.5, {"speed"}, "m-3", false, "", "", 0};
  bytes.clear();
  encode_avro_alert(a, alert_id, bytes);
  ASSERT_TRUE(read_confluent_header(bytes, id, body));
  ASSERT_TRUE(avro_datum_to_json(AvroSchema::parse(client().get_schema(id)), body, json, &error)) << error;
  EXPECT_EQ(json,
            R"({"id":"car-1:anomaly:5","car":"car-1","kind":"anomaly","raised":true,"ts":5,"score":0.9,)"
            R"("threshold":0.5,"signals":["speed"],"model_version":"m-3"})");
}

// ---- the client against other servers: path prefixes, proxies, slow registries ---------------------------

namespace {

/// A plain httplib server with test-defined routes on a free loopback port, for answers EmbeddedRegistry
/// never gives. Test thread starts and stops it; handlers run on its threads.
class FakeServer {
 public:
  httplib::Server server;

  void start() {
    _port = server.bind_to_any_port("127.0.0.1");
    ASSERT_GT(_port, 0);
    _thread = std::thread([this] { server.listen_after_bind(); });
    for (int i = 0; i < 5000 && !server.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    server.stop();
    if (_thread.joinable()) _thread.join();
  }
  std::string url(const std::string& prefix = {}) const {
    return "http://127.0.0.1:" + std::to_string(_port) + prefix;
  }

 private:
  int _port = 0;
  std::thread _thread;
};

}  // namespace

TEST(RegistryClient, UsesThePathPrefixOfTheBaseUrl) {
  FakeServer fake;
  std::string seen_body, seen_type, seen_target;
  // httplib routes on the decoded path; the raw target shows the subject's '/' went out escaped.
  fake.server.Post("/reg/subjects/x-y/z-value/versions",
                   [&](const httplib::Request& req, httplib::Response& res) {
                     seen_body = req.body;
                     seen_type = req.get_header_value("Content-Type");
                     seen_target = req.target;
                     res.set_content(R"({"id":42})", "application/json");
                   });
  fake.server.Get("/reg/schemas/ids/7", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"schema":"\"int\"","schemaType":"AVRO"})", "application/json");
  });
  fake.start();
  SchemaRegistryClient c(fake.url("/reg/"), short_timeouts());
  EXPECT_EQ(c.register_schema("x-y/z-value", R"("string")"), 42);
  EXPECT_EQ(seen_body, R"({"schema":"\"string\""})");
  EXPECT_EQ(seen_type, kJson);
  EXPECT_EQ(seen_target, "/reg/subjects/x-y%2Fz-value/versions");
  EXPECT_EQ(c.get_schema(7), R"("int")");
}

TEST(RegistryClient, ErrorsFromProxiesAndBadAnswers) {
  FakeServer fake;
  fake.server.Get("/schemas/ids/1", [](const httplib::Request&, httplib::Response& res) {
    res.status = 502;
    res.set_content("<html>Bad Gateway</html>", "text/html");
  });
  fake.server.Get("/schemas/ids/2", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"unexpected":true})", "application/json");
  });
  fake.server.Post("/subjects/s/versions", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"id":-5})", "application/json");
  });
  fake.server.Get("/schemas/ids/3", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    res.set_content(R"({"schema":"\"int\""})", "application/json");
  });
  fake.start();
  SchemaRegistryClientOptions o;
  o.request_timeout = std::chrono::milliseconds(200);
  SchemaRegistryClient c(fake.url(), o);
  expect_registry_error([&] { c.get_schema(1); }, 502, 0, "Bad Gateway");
  EXPECT_THROW(c.get_schema(2), SchemaRegistryError);
  EXPECT_THROW(c.register_schema("s", R"("int")"), SchemaRegistryError);
  expect_registry_error([&] { c.get_schema(3); }, 0);  // timed out
}
