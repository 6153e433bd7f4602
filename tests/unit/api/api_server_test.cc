// The REST API over a real server on a free port and a SQLite store filled with known twins, alerts,
// commands and history: every endpoint, roles, error shapes, paging.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "api/api_server.h"
#include "codec/json.h"
#include "codec/retrain_request.h"
#include "core/metric_catalog.h"
#include "core/signals.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "store/sqlite/sqlite_store.h"
#include "support/log_records.h"
#include "support/temp_dir.h"

namespace fleettwin::api {
namespace {

namespace fs = std::filesystem;

constexpr const char* kViewer = "viewer-token-1";
constexpr const char* kOperator = "operator-token-1";
constexpr const char* kAdmin = "admin-token-1";
constexpr int64_t kT0 = 1700000000000;  // ms; every fixture's device time starts here

std::string encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

core::Twin make_twin(int i) {
  core::Twin t;
  char id[16];
  std::snprintf(id, sizeof id, "car-%03d", i);
  t.id = id;
  t.version = 1;
  t.has_reported = true;
  t.reported.car = t.id;
  t.reported.seq = 10;
  t.reported.ts = kT0 + 9000;
  t.reported.lat = 48.0 + i * 0.01;
  t.reported.lon = 11.0 + i * 0.01;
  t.reported.values[core::kSpeed] = i;
  t.health.status = i % 5 == 0 ? core::HealthStatus::kAnomaly : core::HealthStatus::kOk;
  t.health.score = i % 5 == 0 ? 2.0 + i : 0.1;
  t.health.threshold = 1.5;
  t.online = i % 2 == 0;
  t.first_seen = kT0;
  t.last_seen = kT0 + 9000;
  t.messages = 10;
  return t;
}

class ApiServerTest : public ::testing::Test {
 protected:
  static constexpr int kCars = 25;

  void SetUp() override {
    fs::create_directories(dir / "models");
    db = store::SqliteStore::path_in(dir.string());
    store::SqliteStore s(db);
    store::WriteBatch b;
    for (int i = 0; i < kCars; ++i) b.twins.push_back(make_twin(i));
    // car-000's history: one row a second for 10 s, scores rising.
    for (int k = 0; k < 10; ++k) {
      store::TelemetryRow row;
      row.t = b.twins[0].reported;
      row.t.seq = k + 1;
      row.t.ts = kT0 + k * 1000;
      row.t.values[core::kSpeed] = k;
      row.score = k * 0.5;
      b.telemetry.push_back(row);
    }
    core::Alert a;
    a.id = "car-000:anomaly:" + std::to_string(kT0 + 5000);
    a.car = "car-000";
    a.kind = "anomaly";
    a.ts = kT0 + 5000;
    a.score = 2.5;
    a.threshold = 1.5;
    a.signals = {"speed"};
    a.model_version = "m-7";
    b.alerts.push_back(a);
    a.id = "car-005:overheat:" + std::to_string(kT0 + 6000);
    a.car = "car-005";
    a.kind = "overheat";
    a.ts = kT0 + 6000;
    b.alerts.push_back(a);
    core::Command c;
    c.id = "cmd-known";
    c.car = "car-001";
    c.name = "set_speed_limit";
    c.params_json = R"({"kmh":80})";
    c.created = kT0;
    c.status = "acked";
    b.commands.push_back(c);
    s.write(b);

    ApiOptions o;
    o.port = 0;
    o.tokens =
        TokenTable::parse(std::string("viewer:") + kViewer + ",operator:" + kOperator + ",admin:" + kAdmin);
    o.open_store = [this] { return std::make_unique<store::SqliteStore>(db); };
    o.metrics = &metrics;
    o.log = &log;
    o.models_dir = (dir / "models").string();
    o.max_stream_clients = 4;
    o.max_streams_per_token = 3;
    metrics.counter("fleettwin_records_in_total", "", "stage=\"process\"").add(42);
    server = std::make_unique<ApiServer>(std::move(o));
    server->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  }

  void TearDown() override { server->stop(); }

  httplib::Result get(const std::string& path, const char* token = kViewer) {
    httplib::Headers h;
    if (token) h.emplace("Authorization", std::string("Bearer ") + token);
    return client->Get(path, h);
  }
  httplib::Result patch(const std::string& path, const std::string& body, const char* token) {
    return client->Patch(path, {{"Authorization", std::string("Bearer ") + token}}, body, "application/json");
  }
  httplib::Result post(const std::string& path, const char* token, const std::string& body = "") {
    return client->Post(path, {{"Authorization", std::string("Bearer ") + token}}, body, "application/json");
  }

  simdjson::dom::element parse(const std::string& body) {
    simdjson::dom::element e;
    EXPECT_EQ(parser.parse(body).get(e), simdjson::SUCCESS) << body;
    return e;
  }
  std::string error_of(const httplib::Result& r) {
    std::string_view msg;
    EXPECT_EQ(parse(r->body)["error"].get(msg), simdjson::SUCCESS) << r->body;
    return std::string(msg);
  }

  const fleettwin::testing::TempDir tmp{"api-test"};
  const fs::path dir = tmp.path();
  std::string db;
  core::Metrics metrics;
  log::MemoryLog log{log::TopicConfig{}};
  std::unique_ptr<ApiServer> server;
  std::unique_ptr<httplib::Client> client;
  simdjson::dom::parser parser;
};

TEST_F(ApiServerTest, HealthReadyAndMetricsNeedNoToken) {
  auto r = get("/healthz", nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(get("/readyz", nullptr)->status, 200);
  r = get("/metrics", nullptr);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("fleettwin_records_in_total{stage=\"process\"} 42"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("fleettwin_api_stream_clients"), std::string::npos);
  EXPECT_EQ(get("/api/v1/openapi.yaml", nullptr)->status, 200);
}

TEST_F(ApiServerTest, ASecondServerOnTheSamePortFailsToStart) {
  ApiOptions o;
  o.port = server->port();
  o.open_store = [this] { return std::make_unique<store::SqliteStore>(db); };
  o.metrics = &metrics;
  ApiServer second(std::move(o));
  EXPECT_THROW(second.start(), std::runtime_error);
  EXPECT_EQ(get("/healthz", nullptr)->status, 200);  // the first one still answers
}

TEST_F(ApiServerTest, TokensAndRoles) {
  auto r = get("/api/v1/twins", nullptr);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(error_of(r).find("token"), std::string::npos);
  EXPECT_EQ(get("/api/v1/twins", "not-a-known-token")->status, 401);
  EXPECT_EQ(get("/api/v1/twins?token=" + std::string(kViewer), nullptr)->status, 200);
  EXPECT_EQ(
      client->Get("/api/v1/whoami", {{"Cookie", std::string("a=b; fleettwin_token=") + kOperator}})->body,
      R"({"role":"operator"})");
  // A viewer reads but may not command a car or acknowledge an alert.
  r = patch("/api/v1/twins/car-001/desired", R"({"speed_limit_kmh":90})", kViewer);
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(error_of(r).find("operator"), std::string::npos);
  EXPECT_EQ(post("/api/v1/alerts/car-000:anomaly:" + std::to_string(kT0 + 5000) + "/ack", kViewer)->status,
            403);
  EXPECT_EQ(patch("/api/v1/twins/car-001/desired", R"({"speed_limit_kmh":90})", kAdmin)->status, 202);
}

TEST_F(ApiServerTest, TwinsArePagedWithCursors) {
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;; ++pages) {
    auto r = get("/api/v1/twins?limit=10" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r->status, 200) << r->body;
    auto doc = parse(r->body);
    for (auto t : doc["items"].get_array()) seen.insert(std::string(t["_id"].get_string().value()));
    if (doc["next_cursor"].is_null()) break;
    cursor = std::string(doc["next_cursor"].get_string().value());
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 2);  // 10 + 10 + 5
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCars));
}

TEST_F(ApiServerTest, TwinsFilterSortAndErrors) {
  auto r = get("/api/v1/twins?filter=" + encode(R"(health.status == "anomaly")") + "&sort=-health.score");
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<std::string> ids;
  for (auto t : parse(r->body)["items"].get_array()) ids.emplace_back(t["_id"].get_string().value());
  EXPECT_EQ(ids, (std::vector<std::string>{"car-020", "car-015", "car-010", "car-005", "car-000"}));

  r = get("/api/v1/twins?filter=" + encode("reported.speed > 3 && bogus == 1"));
  ASSERT_EQ(r->status, 400);
  auto doc = parse(r->body);
  EXPECT_EQ(doc["position"].get_int64().value(), 22) << r->body;
  EXPECT_NE(error_of(r).find("bogus"), std::string::npos);
  EXPECT_EQ(get("/api/v1/twins?limit=0")->status, 400);
  EXPECT_EQ(get("/api/v1/twins?sort=nope")->status, 400);
  EXPECT_EQ(get("/api/v1/twins?status=broken")->status, 400);
  EXPECT_EQ(get("/api/v1/no/such/route")->status, 404);
}

TEST_F(ApiServerTest, OneTwinAndUnknownCar) {
  auto r = get("/api/v1/twins/car-003");
  ASSERT_EQ(r->status, 200);
  core::Twin t;
  ASSERT_TRUE(codec::twin_from_json(r->body, t, nullptr));
  EXPECT_EQ(t, make_twin(3));
  r = get("/api/v1/twins/car-999");
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(error_of(r), "no car 'car-999'");
  EXPECT_EQ(get("/api/v1/twins/car-999/history")->status, 404);
  EXPECT_EQ(patch("/api/v1/twins/car-999/desired", R"({"service":true})", kOperator)->status, 404);
}

// The signal catalog in use, as the dashboard reads it: every signal of the built-in catalog here, in
// catalog order, with type, unit, range, part and aliases.
TEST_F(ApiServerTest, SignalCatalog) {
  EXPECT_EQ(get("/api/v1/catalog", nullptr)->status, 401);
  auto r = get("/api/v1/catalog");
  ASSERT_EQ(r->status, 200) << r->body;
  auto doc = parse(r->body);
  const auto& c = *catalog::builtin();
  EXPECT_EQ(doc["name"].get_string().value(), c.name());
  EXPECT_EQ(doc["version"].get_int64().value(), c.version());
  EXPECT_EQ(doc["label"].get_string().value(), c.label());
  auto items = doc["signals"].get_array();
  ASSERT_EQ(items.size(), c.size());
  std::size_t i = 0;
  for (auto s : items) {
    const auto& info = c[i++];
    EXPECT_EQ(s["name"].get_string().value(), info.name);
    EXPECT_EQ(s["field"].get_string().value(), info.field);
    EXPECT_EQ(s["unit"].get_string().value(), info.unit);
    EXPECT_EQ(s["type"].get_string().value(), catalog::to_string(info.type));
    EXPECT_EQ(s["min"].get_double().value(), info.min);
    EXPECT_EQ(s["max"].get_double().value(), info.max);
    EXPECT_EQ(s["description"].get_string().value(), info.description);
    EXPECT_EQ(s["part"].get_string().value(), catalog::to_string(info.part));
    EXPECT_EQ(s["since"].get_int64().value(), info.since);
    EXPECT_EQ(s["aliases"].get_array().size(), info.aliases.size());
  }
}

TEST_F(ApiServerTest, HistoryIsDownsampled) {
  auto r = get("/api/v1/twins/car-000/history?signal=speed,coolant_temp&from=" + std::to_string(kT0) +
               "&to=" + std::to_string(kT0 + 10000) + "&step=2000");
  ASSERT_EQ(r->status, 200) << r->body;
  auto doc = parse(r->body);
  std::vector<double> speed, score;
  for (auto v : doc["signals"]["speed"].get_array()) speed.push_back(v.get_double().value());
  for (auto v : doc["score"].get_array()) score.push_back(v.get_double().value());
  EXPECT_EQ(speed, (std::vector<double>{0.5, 2.5, 4.5, 6.5, 8.5}));  // mean of each 2 s bucket
  EXPECT_EQ(score, (std::vector<double>{0.5, 1.5, 2.5, 3.5, 4.5}));  // max of each bucket
  EXPECT_EQ(doc["threshold"].get_double().value(), 1.5);
  EXPECT_EQ(doc["alerts"].get_array().size(), 1u);
  // Defaults: the hour before the car's last message in at most 600 points (6 s steps here).
  r = get("/api/v1/twins/car-000/history");
  ASSERT_EQ(r->status, 200);
  doc = parse(r->body);
  EXPECT_EQ(doc["step"].get_int64().value(), 6000);
  int64_t rows = 0;
  for (auto c : doc["count"].get_array()) rows += c.get_int64().value();
  EXPECT_EQ(rows, 10);
  EXPECT_EQ(get("/api/v1/twins/car-000/history?signal=nonsense")->status, 400);
  // Regression (issue 17): one signal repeated a thousand times was a thousand columns of every point.
  std::string repeated = "speed";
  for (int i = 0; i < 1000; ++i) repeated += ",speed";
  r = get("/api/v1/twins/car-000/history?signal=" + repeated);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("already requested"), std::string::npos) << r->body;
  EXPECT_EQ(get("/api/v1/twins/car-000/history?from=10&to=5")->status, 400);
  EXPECT_EQ(get("/api/v1/twins/car-000/history?step=abc")->status, 400);
}

TEST_F(ApiServerTest, DesiredSettingsBecomeCommandsOnTheLog) {
  auto consumer = log.consumer("test");
  consumer->subscribe({core::topics::kCommands});
  auto r =
      patch("/api/v1/twins/car-001/desired", R"({"speed_limit_kmh":90,"firmware_version":7})", kOperator);
  ASSERT_EQ(r->status, 202) << r->body;
  std::vector<std::string> ids;
  for (auto id : parse(r->body)["commands"].get_array()) ids.emplace_back(id.get_string().value());
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(ids[0], ids[1]);
  const auto records = testing::drain(*consumer, 2, std::chrono::seconds(5));
  ASSERT_EQ(records.size(), 2u);
  std::map<std::string, core::Command> by_name;
  for (const auto& rec : records) {
    core::Command c;
    ASSERT_TRUE(codec::command_from_json(rec.value, c, nullptr)) << rec.value;
    EXPECT_EQ(rec.key, "car-001");
    by_name[c.name] = c;
  }
  EXPECT_EQ(by_name["set_speed_limit"].params_json, R"({"kmh":90})");
  EXPECT_EQ(by_name["update_firmware"].params_json, R"({"version":7})");

  r = patch("/api/v1/twins/car-001/desired", R"({"speed_limit_kmh":900})", kOperator);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(r).find("speed_limit_kmh"), std::string::npos);
  EXPECT_EQ(patch("/api/v1/twins/car-001/desired", R"({"colour":"red"})", kOperator)->status, 400);
  EXPECT_EQ(patch("/api/v1/twins/car-001/desired", "not json", kOperator)->status, 400);
}

TEST_F(ApiServerTest, Commands) {
  auto r = get("/api/v1/commands/cmd-known");
  ASSERT_EQ(r->status, 200);
  core::Command c;
  ASSERT_TRUE(codec::command_from_json(r->body, c, nullptr));
  EXPECT_EQ(c.status, "acked");
  EXPECT_EQ(get("/api/v1/commands/cmd-unknown")->status, 404);
  r = get("/api/v1/twins/car-001/commands");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(parse(r->body)["items"].get_array().size(), 1u);
}

TEST_F(ApiServerTest, AlertsListFilterAndAck) {
  auto count = [&](const std::string& q) {
    auto r = get("/api/v1/alerts" + q);
    EXPECT_EQ(r->status, 200) << r->body;
    return parse(r->body)["items"].get_array().size();
  };
  EXPECT_EQ(count(""), 2u);
  EXPECT_EQ(count("?kind=overheat"), 1u);
  EXPECT_EQ(count("?car=car-000"), 1u);
  EXPECT_EQ(count("?status=open"), 2u);
  EXPECT_EQ(count("?status=acknowledged"), 0u);
  const std::string id = "car-000:anomaly:" + std::to_string(kT0 + 5000);
  auto r = post("/api/v1/alerts/" + id + "/ack", kOperator);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(parse(r->body)["acknowledged"].get_bool().value());
  EXPECT_EQ(count("?status=acknowledged"), 1u);
  EXPECT_EQ(count("?status=open"), 1u);
  EXPECT_EQ(post("/api/v1/alerts/no-such-alert/ack", kOperator)->status, 404);
  EXPECT_EQ(get("/api/v1/alerts?status=sideways")->status, 400);
}

TEST_F(ApiServerTest, OperatorFeedbackIsStoredShownAndCountedPerModelAcrossARestart) {
  const std::string id = "car-000:anomaly:" + std::to_string(kT0 + 5000);
  const std::string other = "car-005:overheat:" + std::to_string(kT0 + 6000);
  const std::string path = "/api/v1/alerts/" + id + "/feedback";
  EXPECT_EQ(post(path, kViewer, R"({"label":"false"})")->status, 403);
  // Hostile bodies: 400 with the reason, and nothing stored.
  for (const auto& [body, reason] : std::vector<std::pair<std::string, std::string>>{
           {"", "JSON object"},
           {"[1]", "JSON object"},
           {R"({"note":"x"})", "label: missing"},
           {R"({"label":"maybe"})", "label"},
           {R"({"label":1})", "label"},
           {R"({"label":"false","note":7})", "note"},
           {R"({"label":"false","note":")" + std::string(1001, 'x') + "\"}", "longer than"},
           {R"({"label":"false","label":"confirmed"})", "twice"},
           {R"({"label":"false","extra":1})", "unknown key"}}) {
    auto r = post(path, kOperator, body);
    EXPECT_EQ(r->status, 400) << body;
    EXPECT_NE(error_of(r).find(reason), std::string::npos) << body << " -> " << r->body;
  }
  EXPECT_EQ(post("/api/v1/alerts/no-such-alert/feedback", kOperator, R"({"label":"false"})")->status, 404);
  auto r = get("/api/v1/models/m-7/feedback");
  ASSERT_EQ(r->status, 200);
  EXPECT_TRUE(parse(r->body)["precision"].is_null()) << r->body;

  r = post(path, kOperator, R"({"label":"confirmed","note":"worn pump"})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(std::string_view(parse(r->body)["feedback"]), "confirmed");
  ASSERT_EQ(post("/api/v1/alerts/" + other + "/feedback", kAdmin, R"({"label":"false","note":null})")->status,
            200);

  // A restart of the API (and its store connections): the labels are in the store.
  server->stop();
  ApiOptions o;
  o.port = 0;
  o.tokens = TokenTable::parse(std::string("viewer:") + kViewer);
  o.open_store = [this] { return std::make_unique<store::SqliteStore>(db); };
  o.metrics = &metrics;
  server = std::make_unique<ApiServer>(std::move(o));
  server->start();
  client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  r = get("/api/v1/alerts?car=car-000");
  ASSERT_EQ(r->status, 200);
  auto item = parse(r->body)["items"].at(0);
  EXPECT_EQ(std::string_view(item["feedback"]), "confirmed");
  EXPECT_EQ(std::string_view(item["feedback_note"]), "worn pump");
  EXPECT_GT(int64_t(item["feedback_ts"]), 0);
  r = get("/api/v1/models/m-7/feedback");
  ASSERT_EQ(r->status, 200) << r->body;
  const auto counts = parse(r->body);
  EXPECT_EQ(int64_t(counts["confirmed"]), 1);
  EXPECT_EQ(int64_t(counts["false"]), 1);
  EXPECT_DOUBLE_EQ(double(counts["precision"]), 0.5);
}

TEST_F(ApiServerTest, DriftOfTheScoreStageInThisProcess) {
  auto r = get("/api/v1/drift");
  ASSERT_EQ(r->status, 200);
  EXPECT_FALSE(parse(r->body)["measured"].get_bool().value()) << "no score stage has measured any";
  metrics.fixed_point_gauge(core::metric::kDriftPsi, "signal=\"coolant_temp\"", core::metric::kDriftDecimals)
      .set(4'100);
  metrics.fixed_point_gauge(core::metric::kDriftPsi, "signal=\"speed\"", core::metric::kDriftDecimals)
      .set(200);
  metrics.fixed_point_gauge(core::metric::kDriftPsiMax, "", core::metric::kDriftDecimals).set(4'100);
  r = get("/api/v1/drift");
  ASSERT_EQ(r->status, 200);
  const auto doc = parse(r->body);
  EXPECT_TRUE(doc["measured"].get_bool().value());
  EXPECT_DOUBLE_EQ(double(doc["max"]), 0.41);
  EXPECT_EQ(std::string_view(doc["signals"].at(0)["signal"]), "coolant_temp") << "largest first";
  EXPECT_DOUBLE_EQ(double(doc["signals"].at(1)["psi"]), 0.02);
  EXPECT_NE(get("/metrics", nullptr)->body.find("fleettwin_drift_psi{signal=\"coolant_temp\"} 0.4100"),
            std::string::npos);
}

TEST_F(ApiServerTest, FleetSummaryThroughputPositionsModels) {
  auto r = get("/api/v1/fleet/summary");
  ASSERT_EQ(r->status, 200) << r->body;
  auto doc = parse(r->body);
  EXPECT_EQ(doc["cars"].get_int64().value(), kCars);
  EXPECT_EQ(doc["by_status"]["anomaly"].get_int64().value(), 5);
  EXPECT_EQ(doc["online"].get_int64().value(), 13);
  EXPECT_EQ(std::string(doc["top"].at(0)["car"].get_string().value()), "car-020");

  r = get("/api/v1/fleet/throughput?seconds=60");
  ASSERT_EQ(r->status, 200);
  EXPECT_TRUE(parse(r->body)["items"].is_array());

  r = get("/api/v1/fleet/positions");
  ASSERT_EQ(r->status, 200);
  doc = parse(r->body);
  EXPECT_EQ(doc["ids"].get_array().size(), static_cast<std::size_t>(kCars));
  EXPECT_EQ(doc["status"].at(5).get_int64().value(), 3);
  EXPECT_DOUBLE_EQ(doc["lat"].at(1).get_double().value(), 48.01);

  r = get("/api/v1/models");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"items":[],"cards":[]})");
  std::ofstream(dir / "models" / "v1.json") << R"({"version":"v1","threshold":1.5,"role":"active"})";
  std::ofstream(dir / "models" / "broken.json") << "{not json";
  r = get("/api/v1/models");
  EXPECT_EQ(parse(r->body)["items"].get_array().size(), 1u) << r->body;
}

/// Live-stream clients held open on their own threads until the holder is destroyed.
class HeldStreams {
 public:
  HeldStreams(int port, const std::vector<const char*>& tokens) {
    for (const char* token : tokens) {
      _readers.emplace_back([this, port, token] {
        httplib::Client c("127.0.0.1", port);
        c.Get("/api/v1/stream?token=" + std::string(token),
              [this, first = true](const char*, std::size_t) mutable {
                if (first) ++_connected;
                first = false;
                return !_stop.load();
              });
      });
    }
    const auto n = static_cast<int>(tokens.size());
    EXPECT_TRUE(testing::until([&] { return _connected.load() == n; },
                               [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); },
                               std::chrono::seconds(10)));
  }
  ~HeldStreams() {
    _stop = true;
    for (auto& t : _readers) t.join();
  }
  HeldStreams(const HeldStreams&) = delete;
  HeldStreams& operator=(const HeldStreams&) = delete;

 private:
  std::vector<std::thread> _readers;
  std::atomic<int> _connected{0};
  std::atomic<bool> _stop{false};
};

TEST_F(ApiServerTest, StreamSendsEventsAndIsBounded) {
  std::string received;
  auto r = client->Get("/api/v1/stream?token=" + std::string(kViewer), [&](const char* data, std::size_t n) {
    received.append(data, n);
    return received.find("event: throughput") == std::string::npos;
  });
  EXPECT_NE(received.find("event: hello"), std::string::npos) << received;
  EXPECT_NE(received.find("event: throughput"), std::string::npos) << received;
  // The client limit answers 503 with a JSON error rather than queueing unboundedly.
  const HeldStreams held(server->port(), {kViewer, kViewer, kOperator, kAdmin});
  auto refused = get("/api/v1/stream", kOperator);
  EXPECT_EQ(refused->status, 503);
}

// Regression (issue 17): one token could take every live-stream slot; now it holds its share at most.
TEST_F(ApiServerTest, StreamsPerTokenAreBounded) {
  const HeldStreams held(server->port(), {kViewer, kViewer, kViewer});
  auto refused = get("/api/v1/stream", kViewer);
  EXPECT_EQ(refused->status, 429);
  EXPECT_NE(error_of(refused).find("3 live streams"), std::string::npos) << refused->body;
  // Another token still gets the slot that is left.
  std::string received;
  client->Get("/api/v1/stream?token=" + std::string(kOperator), [&](const char* data, std::size_t n) {
    received.append(data, n);
    return false;
  });
  EXPECT_NE(received.find("event: hello"), std::string::npos) << received;
}

TEST_F(ApiServerTest, OversizedBodiesAre413WithAJsonError) {
  const std::string body = "{\"speed_limit_kmh\": \"" + std::string(kMaxRequestBodyBytes, 'x') + "\"}";
  auto r = patch("/api/v1/twins/car-001/desired", body, kOperator);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(error_of(r).find("request body too large"), std::string::npos) << r->body;
}

/// A TCP connection to 127.0.0.1:`port` that sends nothing; closed when destroyed.
class IdleConnection {
 public:
  explicit IdleConnection(int port) : _fd(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ~IdleConnection() { ::close(_fd); }
  IdleConnection(const IdleConnection&) = delete;
  IdleConnection& operator=(const IdleConnection&) = delete;
  /// Everything the server sends until it closes (or 5 s pass).
  std::string read_all() const {
    timeval tv{5, 0};
    ::setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = ::recv(_fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }

 private:
  int _fd;
};

// Regression (issue 17): connections were accepted and queued without a limit, each holding a descriptor
// until its read timed out; past http.max_connections they are answered 503 at once and closed.
TEST(ApiConnections, ConnectionsPastTheLimitAre503AtOnce) {
  ApiOptions o;
  o.port = 0;
  o.tokens = TokenTable::parse(std::string("viewer:") + kViewer);
  o.max_connections = 4;
  ApiServer server(std::move(o));
  server.start();
  {
    std::vector<std::unique_ptr<IdleConnection>> idle;
    for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<IdleConnection>(server.port()));
    // Accepted in order: by the time the fifth is, the four hold every place.
    const IdleConnection fifth(server.port());
    const std::string answer = fifth.read_all();
    EXPECT_EQ(answer.rfind("HTTP/1.1 503", 0), 0u) << answer;
    EXPECT_NE(answer.find("too many connections"), std::string::npos) << answer;
  }
  // The places come back when the idle clients leave.
  httplib::Client c("127.0.0.1", server.port());
  EXPECT_TRUE(testing::until(
      [&] {
        const auto ok = c.Get("/healthz");
        return ok && ok->status == 200;
      },
      [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }, std::chrono::seconds(10)));
  const auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  const std::string counter = "\nfleettwin_api_connections_refused_total ";
  const auto at = r->body.find(counter);
  ASSERT_NE(at, std::string::npos) << r->body;
  EXPECT_GE(std::stoi(r->body.substr(at + counter.size())), 1) << r->body;  // retries above may add some
  server.stop();
}

TEST(ApiOpenApi, DocumentListsExactlyTheServersRoutes) {
  // Parsed with a line scan of the `paths:` block (two-space path keys, four-space method keys) so the test
  // needs no YAML library; the server embeds this same file.
  std::ifstream in(std::string(FLEETTWIN_SOURCE_DIR) + "/docs/openapi.yaml");
  ASSERT_TRUE(in);
  std::set<std::string> documented;
  std::string line, path;
  bool in_paths = false;
  while (std::getline(in, line)) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (in_paths && !line.empty() && line[0] != ' ') break;
    if (!in_paths) continue;
    if (line.rfind("  /", 0) == 0 && line.back() == ':') path = line.substr(2, line.size() - 3);
    for (const char* m : {"get", "post", "patch", "put", "delete"})
      if (line == std::string("    ") + m + ":") {
        std::string upper = m;
        for (auto& ch : upper) ch = static_cast<char>(std::toupper(ch));
        documented.insert(upper + " " + path);
      }
  }
  std::set<std::string> served;
  for (const auto& r : ApiServer::routes()) served.insert(r.method + " " + r.path);
  EXPECT_EQ(documented, served);
  EXPECT_EQ(ApiServer::openapi_yaml().substr(0, 14), "openapi: 3.0.3");
}

// Admin only: the shadow model on fleet.models becomes the active one ("anomaly"), byte for byte.
TEST_F(ApiServerTest, AdminPromotesTheShadowModel) {
  EXPECT_EQ(post("/api/v1/models/promote", kOperator)->status, 403);
  auto r = post("/api/v1/models/promote", kAdmin);
  EXPECT_EQ(r->status, 409);
  EXPECT_NE(r->body.find("no shadow model"), std::string::npos) << r->body;

  const std::string meta = R"({"version":"m2","threshold":1.25})";
  std::string artifact = "FTMODEL1";
  for (int i = 0; i < 8; ++i) artifact.push_back(static_cast<char>((meta.size() >> (8 * i)) & 0xff));
  artifact += meta + std::string("\x01\x02weights", 9);
  auto producer = log.producer();
  producer->send(log::OutRecord{core::topics::kModels, "anomaly.shadow", artifact, {}, -1, 0});
  ASSERT_EQ(producer->flush(std::chrono::seconds(5)), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (get("/api/v1/models")->body.find("m2") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  r = post("/api/v1/models/promote", kAdmin);
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_NE(r->body.find("m2"), std::string::npos) << r->body;

  auto models = log.consumer("check-models");
  models->subscribe({core::topics::kModels});
  bool promoted = false;
  for (int i = 0; i < 20 && !promoted; ++i)
    for (const auto& rec : models->poll(100, std::chrono::milliseconds(100)))
      if (rec.key == "anomaly") promoted = rec.value == artifact;
  EXPECT_TRUE(promoted);
}

/// A model artifact as the API reads it: "FTMODEL1", the metadata's length, the metadata, any weights.
std::string artifact_of(const std::string& meta) {
  std::string artifact = "FTMODEL1";
  for (int i = 0; i < 8; ++i) artifact.push_back(static_cast<char>((meta.size() >> (8 * i)) & 0xff));
  return artifact + meta + std::string("\x01\x02weights", 9);
}

/// The newest record of `key` on fleet.models, read by a fresh group ("" when none).
std::string newest_of(log::Log& log, const std::string& key, const std::string& group) {
  auto models = log.consumer(group);
  models->subscribe({core::topics::kModels});
  std::string value;
  for (int empty = 0; empty < 5;) {
    auto batch = models->poll(100, std::chrono::milliseconds(50));
    empty = batch.empty() ? empty + 1 : 0;
    for (const auto& rec : batch)
      if (rec.key == key) value = rec.value;
  }
  return value;
}

// Model cards: every kept version with its lineage and gate results, the active one marked, the anomaly
// alerts the store holds per version; one card by version (404 for none). Rollback (admin) re-publishes a
// kept artifact as the active model; POST /models/train writes a retrain request the trainer reads.
TEST_F(ApiServerTest, ModelCardsRollbackAndRetrainRequests) {
  const std::string v1 =
      artifact_of(R"({"version":"m1","created_ms":1,"lineage":{"parent":"","trigger":"api"}})");
  const std::string v2 =
      artifact_of(R"({"version":"m2","created_ms":2,"lineage":{"parent":"m1","trigger":"schedule"}})");
  auto producer = log.producer();
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"anomaly.vm1", v1},
           {"anomaly.vm2", v2},
           {"anomaly.gate.vm2", R"({"passed":false,"reasons":["x"]})"},
           {"anomaly.gate.vm9", "{not json"},
           {"anomaly", v1},
           {"anomaly.shadow", v2}})
    producer->send(log::OutRecord{core::topics::kModels, key, value, {}, -1, 0});
  ASSERT_EQ(producer->flush(std::chrono::seconds(5)), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (get("/api/v1/models/m2")->status != 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));

  auto doc = parse(get("/api/v1/models")->body);
  auto cards = doc["cards"].get_array().value();
  ASSERT_EQ(cards.size(), 2u);
  EXPECT_EQ(cards.at(0)["version"].get_string().value(), "m2");  // newest first
  EXPECT_EQ(cards.at(0)["role"].get_string().value(), "shadow");
  EXPECT_EQ(cards.at(0)["meta"]["lineage"]["parent"].get_string().value(), "m1");
  EXPECT_FALSE(cards.at(0)["gate"]["passed"].get_bool().value());
  EXPECT_EQ(cards.at(1)["role"].get_string().value(), "active");
  EXPECT_TRUE(cards.at(1)["gate"].is_null());
  EXPECT_EQ(get("/api/v1/models/nope")->status, 404);

  EXPECT_EQ(client
                ->Post("/api/v1/models/rollback", {{"Authorization", std::string("Bearer ") + kOperator}},
                       R"({"version":"m2"})", "application/json")
                ->status,
            403);
  auto rollback = [&](const std::string& body) {
    return client->Post("/api/v1/models/rollback", {{"Authorization", std::string("Bearer ") + kAdmin}}, body,
                        "application/json");
  };
  EXPECT_EQ(rollback("{}")->status, 400);
  EXPECT_EQ(rollback(R"({"version":"m7"})")->status, 404);
  auto r = rollback(R"({"version":"m2"})");
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(newest_of(log, "anomaly", "check-rollback"), v2);

  EXPECT_EQ(post("/api/v1/models/train", kOperator)->status, 403);
  r = client->Post("/api/v1/models/train", {{"Authorization", std::string("Bearer ") + kAdmin}},
                   R"({"detail":"new tyres"})", "application/json");
  ASSERT_EQ(r->status, 202) << r->body;
  codec::RetrainRequest request;
  ASSERT_TRUE(
      codec::parse_retrain_request(newest_of(log, "retrain.request", "check-train"), request, nullptr));
  EXPECT_EQ(request.reason, "api");
  EXPECT_EQ(request.detail, "new tyres");
  EXPECT_EQ(client
                ->Post("/api/v1/models/train", {{"Authorization", std::string("Bearer ") + kAdmin}}, "[1]",
                       "application/json")
                ->status,
            400);
}

}  // namespace
}  // namespace fleettwin::api
