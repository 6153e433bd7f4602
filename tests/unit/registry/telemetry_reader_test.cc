#include <gtest/gtest.h>

#include "codec/avro.h"
#include "registry/client.h"
#include "registry/protocol.h"
#include "registry/server.h"
#include "registry/telemetry_reader.h"
#include "support/telemetry_samples.h"
#include "unit/registry/embedded_registry_test.h"

using namespace fleettwin;

namespace {

std::string record(int32_t schema_id) {
  std::string out;
  codec::encode_avro_telemetry(codec::testing::sample_telemetry(), schema_id, out);
  return out;
}

class TelemetryReaderTest : public registry::testing::EmbeddedRegistryTest {
 protected:
  void SetUp() override {
    EmbeddedRegistryTest::SetUp();
    ours = client->register_schema("fleet.telemetry-value", codec::car_telemetry_schema());
    other = client->register_schema(
        "other-value",
        R"({"type":"record","name":"Other","fields":[{"name":"x","type":"long","default":0}]})");
  }
  int32_t ours = 0, other = 0;
};

}  // namespace

TEST_F(TelemetryReaderTest, ReadsRecordsWrittenWithTheRegisteredCarTelemetrySchema) {
  registry::TelemetryReader reader(client);
  core::Telemetry t;
  std::string error;
  ASSERT_TRUE(reader.read(record(ours), t, &error)) << error;
  EXPECT_EQ(t, codec::testing::sample_telemetry());
  const auto requests = server->request_count();
  ASSERT_TRUE(reader.read(record(ours), t, &error)) << error;
  EXPECT_EQ(server->request_count(), requests);  // the id is known: no second lookup
}

TEST_F(TelemetryReaderTest, RefusesAnotherWriterSchemaAndUnknownIds) {
  registry::TelemetryReader reader(client);
  core::Telemetry t;
  std::string error;
  EXPECT_FALSE(reader.read(record(other), t, &error));
  EXPECT_NE(error.find("record Other is not CarTelemetry"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(reader.read(record(9999), t, &error));
  EXPECT_NE(error.find("9999"), std::string::npos) << error;
}

TEST_F(TelemetryReaderTest, WithoutARegistryEveryIdIsTrusted) {
  registry::TelemetryReader reader;
  core::Telemetry t;
  std::string error;
  EXPECT_TRUE(reader.read(record(other), t, &error)) << error;
  EXPECT_FALSE(reader.read("garbage", t, &error));
}

TEST_F(TelemetryReaderTest, UnreachableRegistryThrowsInsteadOfSkipping) {
  registry::TelemetryReader reader(client);
  server->stop();
  core::Telemetry t;
  std::string error;
  EXPECT_THROW(reader.read(record(ours + 100), t, &error), registry::SchemaRegistryError);
}

// A registry that lost its journal answers 404 for ids records still carry. Once the schema is registered
// again the reader must believe it within seconds, not refuse the id for the life of the process (nor for a
// fixed 30 s): it asks again after 1 s, then 2 s, 4 s ... at most 30 s apart.
TEST(TelemetryReaderRetry, AnIdUnknownToARegistryThatLostItsJournalIsAskedAgainWithBackoff) {
  registry::EmbeddedRegistry server(registry::EmbeddedRegistryOptions{});  // no journal: starts empty
  server.start();
  auto client = std::make_shared<registry::SchemaRegistryClient>(server.url());
  registry::TelemetryReader reader(client);
  auto now = std::chrono::steady_clock::now();
  reader.set_clock([&] { return now; });
  core::Telemetry t;
  std::string error;
  EXPECT_FALSE(reader.read(record(1), t, &error));
  EXPECT_STREQ(reader.failure_reason(), "unknown_schema");
  const auto asked = server.request_count();
  now += std::chrono::milliseconds(500);
  EXPECT_FALSE(reader.read(record(1), t, &error));  // within the backoff: not asked again
  EXPECT_EQ(server.request_count(), asked);
  now += std::chrono::milliseconds(600);
  EXPECT_FALSE(reader.read(record(1), t, &error));  // asked again after 1 s, still unknown
  EXPECT_EQ(server.request_count(), asked + 1);
  now += std::chrono::milliseconds(1500);
  EXPECT_FALSE(reader.read(record(1), t, &error));  // the second wait is 2 s
  EXPECT_EQ(server.request_count(), asked + 1);
  // The operator restores the schema; it gets id 1 again on the empty registry.
  ASSERT_EQ(client->register_schema("fleet.telemetry-value", codec::car_telemetry_schema()), 1);
  now += std::chrono::milliseconds(600);
  ASSERT_TRUE(reader.read(record(1), t, &error)) << error;
  EXPECT_EQ(t, codec::testing::sample_telemetry());
  EXPECT_FALSE(reader.read("garbage", t, &error));
  EXPECT_STREQ(reader.failure_reason(), "undecodable");
}
