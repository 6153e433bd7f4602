// The REST API on a store of the VSS catalog (deploy/catalogs/vss.yaml): signals by their VSS names in
// twins, history and /signals, filters, sorts and ?signal= by name, field or alias, absent signals left out
// (twins) or null (history), flags by name.
#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>

#include <cmath>
#include <string>

#include "api/api_server.h"
#include "catalog/catalog.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

namespace fleettwin::api {
namespace {

constexpr const char* kToken = "viewer-token-1";
constexpr int64_t kT0 = 1700000000000;

class ApiCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vss = std::make_shared<const catalog::Catalog>(
        catalog::load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml"));
    speed = vss->index_of("Vehicle.Speed");
    odometer = vss->index_of("Vehicle.TraveledDistance");
    db = store::SqliteStore::path_in(tmp.path().string());
    store::SqliteStore s(db, {}, vss);
    store::WriteBatch b;
    for (int i = 0; i < 3; ++i) {
      core::Twin t;
      t.id = "car-" + std::to_string(i);
      t.has_reported = true;
      t.reported.car = t.id;
      t.reported.seq = 4;
      t.reported.ts = kT0 + 3000;
      t.reported.values.assign(vss->size(), core::kAbsent);
      t.reported.values[speed] = 20.0 * i;  // 0, 20, 40
      t.metadata.assign(vss->size(), 0);
      t.metadata[speed] = t.reported.ts;
      t.last_seen = t.reported.ts;
      b.twins.push_back(t);
    }
    b.twins[2].reported.values[speed] = 140;  // out of range: kept, flagged
    b.twins[2].reported.out_of_range = {static_cast<uint16_t>(speed)};
    // car-0's history: speed on every row, the odometer on the last two only.
    for (int k = 0; k < 4; ++k) {
      store::TelemetryRow row;
      row.t = b.twins[0].reported;
      row.t.seq = k + 1;
      row.t.ts = kT0 + k * 1000;
      row.t.values[speed] = k;
      if (k >= 2) row.t.values[odometer] = 100 + k;
      b.telemetry.push_back(row);
    }
    s.write(b);

    ApiOptions o;
    o.port = 0;
    o.tokens = TokenTable::parse(std::string("viewer:") + kToken);
    o.open_store = [this] { return std::make_unique<store::SqliteStore>(db, store::SqliteOptions{}, vss); };
    o.catalog = vss;
    o.metrics = &metrics;
    server = std::make_unique<ApiServer>(std::move(o));
    server->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  }

  void TearDown() override { server->stop(); }

  simdjson::dom::element get_json(const std::string& path, int status = 200) {
    auto r = client->Get(path, {{"Authorization", std::string("Bearer ") + kToken}});
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, status) << path << ": " << r->body;
    body = r->body;
    simdjson::dom::element e;
    EXPECT_EQ(parser.parse(body).get(e), simdjson::SUCCESS) << body;
    return e;
  }
  std::vector<std::string> twin_ids(const std::string& query) {
    std::vector<std::string> out;
    for (auto t : get_json("/api/v1/twins?" + query)["items"].get_array()) {
      out.emplace_back(std::string_view(t["_id"]));
    }
    return out;
  }

  const fleettwin::testing::TempDir tmp{"api-catalog"};
  std::shared_ptr<const catalog::Catalog> vss;
  std::size_t speed = 0, odometer = 0;
  std::string db;
  std::string body;
  core::Metrics metrics;
  std::unique_ptr<ApiServer> server;
  std::unique_ptr<httplib::Client> client;
  simdjson::dom::parser parser;
};

TEST_F(ApiCatalogTest, TheCatalogInUseIsServed) {
  const auto doc = get_json("/api/v1/catalog");
  EXPECT_EQ(std::string_view(doc["name"]), "vss");
  EXPECT_EQ(std::string_view(doc["label"]), vss->label());
  auto items = doc["signals"].get_array();
  ASSERT_EQ(items.size(), vss->size());
  EXPECT_EQ(std::string_view(items.at(speed)["name"]), "Vehicle.Speed");
  EXPECT_EQ(std::string_view(items.at(speed)["field"]), "Vehicle_Speed");
  EXPECT_EQ(std::string_view(items.at(speed)["part"]), "drivetrain");
  EXPECT_EQ(std::string_view(items.at(speed)["aliases"].at(0)), "speed");
  EXPECT_EQ(int64_t(items.at(odometer)["since"]), 2);
}

TEST_F(ApiCatalogTest, TwinsShowPresentSignalsByNameAndFlags) {
  const auto t = get_json("/api/v1/twins/car-2");
  EXPECT_EQ(double(t["reported"]["Vehicle.Speed"]), 140);
  EXPECT_EQ(t["reported"]["Vehicle.OBD.MAF"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(std::string_view(t["reported"]["flags"].at(0)), "Vehicle.Speed");
  EXPECT_EQ(int64_t(t["metadata"]["Vehicle.Speed"]), kT0 + 3000);
  EXPECT_TRUE(t["location"].is_null());  // no position reported
  EXPECT_EQ(get_json("/api/v1/twins/car-1")["reported"]["flags"].error(), simdjson::NO_SUCH_FIELD);
}

TEST_F(ApiCatalogTest, FiltersAndSortsTakeAnyNameOfASignal) {
  const std::vector<std::string> fast{"car-1", "car-2"};
  EXPECT_EQ(twin_ids("filter=reported.Vehicle.Speed%20%3E%2010"), fast);
  EXPECT_EQ(twin_ids("filter=reported.Vehicle_Speed%20%3E%2010"), fast);
  EXPECT_EQ(twin_ids("filter=reported.speed%20%3E%2010"), fast);
  EXPECT_EQ(twin_ids("sort=-reported.speed"), (std::vector<std::string>{"car-2", "car-1", "car-0"}));
  get_json("/api/v1/twins?filter=reported.coolant_temp_x%20%3E%201", 400);
}

TEST_F(ApiCatalogTest, HistoryByAnyNameWithNullWhereAbsent) {
  const std::string range =
      "&from=" + std::to_string(kT0) + "&to=" + std::to_string(kT0 + 4000) + "&step=2000";
  const auto doc = get_json("/api/v1/twins/car-0/history?signal=Vehicle.Speed,odometer" + range);
  auto speeds = doc["signals"]["Vehicle.Speed"].get_array();
  ASSERT_EQ(speeds.size(), 2u);
  EXPECT_EQ(double(speeds.at(0)), 0.5);
  EXPECT_EQ(double(speeds.at(1)), 2.5);
  auto odo = doc["signals"]["Vehicle.TraveledDistance"].get_array();
  ASSERT_EQ(odo.size(), 2u);
  EXPECT_TRUE(odo.at(0).is_null()) << body;
  EXPECT_EQ(double(odo.at(1)), 102.5);
  // No ?signal=: speed, which this catalog has by alias.
  EXPECT_EQ(get_json("/api/v1/twins/car-0/history?" + range.substr(1))["signals"]["Vehicle.Speed"].error(),
            simdjson::SUCCESS);
  get_json("/api/v1/twins/car-0/history?signal=coolant_temp_x" + range, 400);
}

}  // namespace
}  // namespace fleettwin::api
