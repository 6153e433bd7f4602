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
