// The registry facing hostile clients (issue 17): tokens for changes (registry.tokens), bounded request
// bodies, and a compatibility check whose work is polynomial in the schemas whatever their union nesting.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "codec/json_writer.h"
#include "registry/client.h"
#include "registry/schema.h"
#include "registry/server.h"

using namespace fleettwin;
using namespace fleettwin::registry;

namespace {

constexpr const char* kJson = "application/vnd.schemaregistry.v1+json";
constexpr const char* kOperator = "operator-token-1";
constexpr const char* kAdmin = "admin-token-1";

std::string schema_body(const std::string& schema) {
  std::string out;
  codec::JsonWriter(out).begin_object().key("schema").string(schema).end_object();
  return out;
}

std::string reading(const std::string& extra_fields = {}) {
  return R"({"type":"record","name":"Reading","fields":[{"name":"car","type":"string"})" + extra_fields +
         "]}";
}

// A reader and a writer whose unions nest `levels` deep, made so that resolving them tries every reader
// branch at every level: each reader union holds two records named R (in namespaces a<k> and b<k>), both
// matching the writer's R by their short name, and both fail only at the bottom (int against string). The
// texts grow linearly (the b-records refer to the a-records' field types by name); a resolution that forgets
// what it has tried walks 2^levels paths.
std::pair<std::string, std::string> nested_unions(int levels) {
  std::string reader = R"("string")", writer = R"("int")";
  for (int k = 0; k < levels; ++k) {
    const std::string n = std::to_string(k);
    const std::string inner_reader =
        k == 0 ? reader
               : R"(["null","a)" + std::to_string(k - 1) + R"(.R","b)" + std::to_string(k - 1) + R"(.R"])";
    reader = R"(["null",{"type":"record","name":"R","namespace":"a)" + n +
             R"(","fields":[{"name":"f","type":)" + reader +
             R"(}]},{"type":"record","name":"R","namespace":"b)" + n + R"(","fields":[{"name":"f","type":)" +
             inner_reader + "}]}]";
    writer = R"(["null",{"type":"record","name":"R","namespace":"w)" + n +
             R"(","fields":[{"name":"f","type":)" + writer + "}]}]";
  }
  const auto wrap = [](const std::string& type) {
    return R"({"type":"record","name":"Top","fields":[{"name":"u","type":)" + type + "}]}";
  };
  return {wrap(reader), wrap(writer)};
}

// Regression (issue 17): union branches were each tried with a fresh walk, 2^levels walks here (about 10^6
// at 20 levels, and the parser allows 30); every pair of types is now resolved a bounded number of times.
TEST(RegistryCompatibility, NestedUnionsArePolynomial) {
  for (int levels : {4, 8, 20}) {
    const auto [reader_text, writer_text] = nested_unions(levels);
    const AvroSchema reader = AvroSchema::parse(reader_text), writer = AvroSchema::parse(writer_text);
    std::size_t steps = 0;
    const auto problems = avro_read_problems(reader, writer, &steps);
    EXPECT_FALSE(problems.empty()) << "the int at the bottom is not a string";
    // Reader types per level: a union and two records (with their field types); writer: a union and a record.
    // Pairs are at most their product; each is resolved once per walk (plus once per "no" that forgot it).
    const std::size_t reader_types = 3 * static_cast<std::size_t>(levels) + 3;
    const std::size_t writer_types = 2 * static_cast<std::size_t>(levels) + 3;
    EXPECT_LE(steps, 2 * reader_types * writer_types) << levels << " levels";
    EXPECT_LE(steps, 20u * static_cast<std::size_t>(levels) + 20) << "linear for this shape, " << levels;
  }
}

TEST(RegistryCompatibility, MemoryKeepsTheAnswersOfRecursiveTypes) {
  // A recursive list evolved compatibly (a field with a default) and incompatibly (a field without one):
  // the cycle is assumed readable while it is resolved, and the answer is the same either way round.
  const std::string v1 =
      R"({"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"int"}]})";
  const std::string v2 =
      R"({"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"long"},)"
      R"({"name":"w","type":"int","default":0}]})";
  const std::string v3 =
      R"({"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"v","type":"int"},)"
      R"({"name":"w","type":"int"}]})";
  EXPECT_TRUE(avro_read_problems(AvroSchema::parse(v2), AvroSchema::parse(v1)).empty());
  EXPECT_FALSE(avro_read_problems(AvroSchema::parse(v1), AvroSchema::parse(v2)).empty());  // long -> int
  EXPECT_FALSE(avro_read_problems(AvroSchema::parse(v3), AvroSchema::parse(v1)).empty());
}

class RegistryLimits : public ::testing::Test {
 protected:
  void start(const std::string& tokens) {
    EmbeddedRegistryOptions o;
    o.tokens = core::TokenTable::parse(tokens);
    o.max_request_bytes = 64 << 10;
    registry = std::make_unique<EmbeddedRegistry>(o);
    registry->start();
  }

  httplib::Result call(const std::string& method, const std::string& path, const std::string& body,
                       const char* token = nullptr) {
    httplib::Client c("127.0.0.1", registry->port());
    httplib::Headers h;
    if (token) h.emplace("Authorization", std::string("Bearer ") + token);
    if (method == "GET") return c.Get(path, h);
    if (method == "POST") return c.Post(path, h, body, kJson);
    if (method == "PUT") return c.Put(path, h, body, kJson);
    return c.Delete(path, h);
  }

  std::unique_ptr<EmbeddedRegistry> registry;
};

// Regression (issue 17): the registry had no authentication; anybody who reached it could register
// schemas or switch compatibility off.
TEST_F(RegistryLimits, TokensGuardChangesAndLeaveReadsOpen) {
  start(std::string("operator:") + kOperator + ",admin:" + kAdmin);
  const std::string v1 = schema_body(reading());
  auto r = call("POST", "/subjects/t-value/versions", v1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  EXPECT_NE(r->body.find("40101"), std::string::npos) << r->body;
  EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(call("POST", "/subjects/t-value/versions", v1, "not-a-known-token")->status, 401);
  EXPECT_EQ(call("POST", "/subjects/t-value/versions", v1, kOperator)->status, 200);
  // Changing the rules needs an admin; the operator token is refused with 403.
  const std::string none = R"({"compatibility":"NONE"})";
  EXPECT_EQ(call("PUT", "/config", none)->status, 401);
  EXPECT_EQ(call("PUT", "/config/t-value", none, kOperator)->status, 403);
  EXPECT_EQ(call("PUT", "/config/t-value", none, kAdmin)->status, 200);
  EXPECT_EQ(call("DELETE", "/subjects/t-value", "", kOperator)->status, 403);
  // Reads, lookups and compatibility tests change nothing: open, as Confluent deserializers expect.
  EXPECT_EQ(call("GET", "/schemas/ids/1", "")->status, 200);
  EXPECT_EQ(call("GET", "/subjects/t-value/versions/latest", "")->status, 200);
  EXPECT_EQ(call("POST", "/subjects/t-value", v1)->status, 200);
  EXPECT_EQ(call("POST", "/compatibility/subjects/t-value/versions/latest", v1)->status, 200);
  // The fleettwin client sends its token when it has one.
  SchemaRegistryClientOptions with_token;
  with_token.token = kOperator;
  EXPECT_EQ(SchemaRegistryClient(registry->url(), with_token).register_schema("u-value", reading()), 1);
  try {
    SchemaRegistryClient(registry->url()).register_schema("v-value", reading());
    ADD_FAILURE() << "registered without a token";
  } catch (const SchemaRegistryError& e) {
    EXPECT_EQ(e.status(), 401) << e.what();
  }
}

TEST_F(RegistryLimits, NoTokensNoAuthentication) {
  start("");
  EXPECT_EQ(call("POST", "/subjects/t-value/versions", schema_body(reading()))->status, 200);
  EXPECT_EQ(call("PUT", "/config", R"({"compatibility":"NONE"})")->status, 200);
}

TEST_F(RegistryLimits, OversizedBodiesAre413WithAConfluentError) {
  start("");
  std::string fields;
  for (int i = 0; fields.size() < (64 << 10); ++i)
    fields += R"(,{"name":"f)" + std::to_string(i) + R"(","type":"int","default":0})";
  const auto r = call("POST", "/subjects/t-value/versions", schema_body(reading(fields)));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("larger than 65536 bytes"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"error_code\":413"), std::string::npos) << r->body;
}

// The check runs outside the store's lock and a registration checks again when something changed meanwhile:
// writers racing on one subject each get a version and an id of their own, and each version can read the
// one before it (BACKWARD).
TEST_F(RegistryLimits, RacingRegistrationsEachCheckTheVersionTheyFollow) {
  start("");
  SchemaRegistryClient(registry->url()).register_schema("t-value", reading());
  constexpr int kWriters = 8;
  std::vector<std::thread> writers;
  std::atomic<int> registered{0};
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      SchemaRegistryClient c(registry->url());
      const std::string field = R"(,{"name":"x)" + std::to_string(i) + R"(","type":"int","default":0})";
      c.register_schema("t-value", reading(field));
      ++registered;
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(registered.load(), kWriters);
  auto& store = registry->store();
  ASSERT_EQ(store.versions("t-value").size(), static_cast<std::size_t>(kWriters + 1));
  std::set<int32_t> ids;
  for (int v = 2; v <= kWriters + 1; ++v) {
    ids.insert(store.version("t-value", v).id);
    EXPECT_TRUE(avro_read_problems(AvroSchema::parse(store.version("t-value", v).schema),
                                   AvroSchema::parse(store.version("t-value", v - 1).schema))
                    .empty());
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kWriters));
}

}  // namespace
