// GET /api/v1/dlq (issue 17, item 4): the newest dead letters of every stage, read from the DLQ topics of the
// log, with the original bytes as text where printable (base64 otherwise), and counts per stage and reason.
#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>

#include <chrono>
#include <thread>

#include "api/api_server.h"
#include "api/dlq_recent.h"
#include "core/metrics.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/dead_letters.h"

namespace fleettwin::api {
namespace {

namespace t = core::topics;
using namespace std::chrono_literals;

constexpr const char* kViewer = "viewer-token-1";

log::Record record(const char* topic, std::string key, std::string value, int64_t ts) {
  log::Record r;
  r.topic = topic;
  r.key = std::move(key);
  r.value = std::move(value);
  r.timestamp_ms = ts;
  return r;
}

TEST(DlqRecent, KeepsTheNewestBoundedAndRendersPrintableBytesAsText) {
  DlqRecent dlq;
  auto r = record(t::kTelemetryDlq, "car-1", "{\"car\":", 10);
  r.headers = {{t::kHeaderErrorStage, "process"}, {t::kHeaderErrorReason, "malformed"}};
  dlq.keep(r);
  auto bin = record(t::kCommandAcksDlq, "car-2", std::string("\x00\xff\x01", 3), 20);
  bin.headers = {{t::kHeaderErrorStage, "twin"}, {t::kHeaderErrorReason, "undecodable"}};
  dlq.keep(bin);
  auto items = dlq.list(10, "", "");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].stage, "twin");  // newest first
  EXPECT_NE(dlq_entry_json(items[0]).find(R"("encoding":"base64","value":"AP8B")"), std::string::npos);
  EXPECT_NE(dlq_entry_json(items[1]).find(R"("encoding":"text","value":"{\"car\":")"), std::string::npos);
  EXPECT_EQ(dlq.list(10, "process", "").size(), 1u);
  EXPECT_EQ(dlq.list(10, "", "nothing").size(), 0u);
  for (std::size_t i = 0; i < DlqRecent::kCapacity + 5; ++i)
    dlq.keep(record(t::kScoresDlq, "k", std::string(10000, 'x'), 30));
  items = dlq.list(DlqRecent::kCapacity + 5, "", "");
  EXPECT_EQ(items.size(), DlqRecent::kCapacity);
  EXPECT_EQ(items[0].value.size(), DlqRecent::kMaxValueBytes);
  EXPECT_EQ(items[0].size, 10000u);
  EXPECT_EQ((dlq.counts().at({"twin", "undecodable"})), 1);
  EXPECT_EQ((dlq.counts().at({"unknown", "unknown"})), static_cast<int64_t>(DlqRecent::kCapacity + 5));
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
}

TEST(ApiDlq, ListsWhatTheStagesSentToTheirDlqNewestFirstWithCounts) {
  log::MemoryLog log{log::TopicConfig{}};
  for (const char* topic : t::kDlqTopics) log.create_topic(topic, {});
  core::Metrics metrics;
  ApiOptions o;
  o.port = 0;
  o.tokens = TokenTable::parse(std::string("viewer:") + kViewer);
  o.metrics = &metrics;
  o.log = &log;
  ApiServer server(std::move(o));
  server.start();
  // What the stages write, through the writer they share.
  stages::DeadLetters twin(metrics, "twin");
  stages::DeadLetters sink(metrics, "sink");
  auto producer = log.producer();
  twin.send(record(t::kCommandAcks, "car-1", R"({"id":"x","status":"acked","reported":{"a.b":1}})", 1000),
            "invalid_answer", "reported: unknown setting 'a.b'", *producer);
  sink.send(record(t::kTwins, "car-2", std::string("\x01\x02", 2), 2000), "undecodable", "not JSON",
            *producer);
  sink.send(record(t::kTelemetry, "car-3", "garbage", 3000), "unknown_schema", "schema id 9", *producer);
  producer->flush(1s);
  httplib::Client client("127.0.0.1", server.port());
  const httplib::Headers auth{{"Authorization", std::string("Bearer ") + kViewer}};
  std::string body;
  for (int i = 0; i < 200; ++i) {  // the API's background thread reads the topics
    auto r = client.Get("/api/v1/dlq", auth);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    body = r->body;
    if (body.find("car-1") != std::string::npos && body.find("car-3") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(body).get(doc), simdjson::SUCCESS) << body;
  simdjson::dom::array items;
  ASSERT_EQ(doc["items"].get(items), simdjson::SUCCESS);
  ASSERT_EQ(items.size(), 3u) << body;
  std::vector<std::string> order;
  for (auto item : items) order.emplace_back(std::string_view(item["key"]));
  EXPECT_EQ(order, (std::vector<std::string>{"car-3", "car-2", "car-1"}));  // newest first
  auto first = items.at(0);
  EXPECT_EQ(std::string_view(first["topic"]), "fleet.telemetry.dlq");
  EXPECT_EQ(std::string_view(first["stage"]), "sink");
  EXPECT_EQ(std::string_view(first["reason"]), "unknown_schema");
  EXPECT_EQ(std::string_view(first["value"]), "garbage");
  EXPECT_EQ(std::string_view(first["headers"]["source.offset"]), "fleet.telemetry/0/0");
  EXPECT_EQ(std::string_view(items.at(1)["encoding"]), "base64");
  EXPECT_EQ(std::string_view(items.at(2)["value"]), R"({"id":"x","status":"acked","reported":{"a.b":1}})");
  EXPECT_EQ(std::string_view(items.at(2)["detail"]), "reported: unknown setting 'a.b'");
  EXPECT_NE(body.find(R"({"stage":"twin","reason":"invalid_answer","count":1})"), std::string::npos) << body;

  auto filtered = client.Get("/api/v1/dlq?stage=sink&reason=undecodable&limit=5", auth);
  ASSERT_TRUE(filtered);
  ASSERT_EQ(parser.parse(filtered->body).get(doc), simdjson::SUCCESS);
  ASSERT_EQ(doc["items"].get(items), simdjson::SUCCESS);
  EXPECT_EQ(items.size(), 1u);
  EXPECT_EQ(client.Get("/api/v1/dlq?limit=0", auth)->status, 400);
  EXPECT_EQ(client.Get("/api/v1/dlq")->status, 401);
  // The metrics say the same per stage and reason.
  EXPECT_EQ(metrics.value("fleettwin_dlq_reason_total{stage=\"sink\",reason=\"unknown_schema\"}"), 1);
  server.stop();
}

}  // namespace
}  // namespace fleettwin::api
