// The SQLite store's columns follow the catalog: the built-in layout, columns added on open for a catalog
// that adds a signal, columns of dropped signals kept, the upgrade of a version-2 file, and catalogs whose
// fields cannot be columns.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

namespace fleettwin::store {
namespace {

struct StoreDir : fleettwin::testing::TempDir {
  StoreDir() : TempDir("sqlite-catalog") {}
  std::string db() const { return SqliteStore::path_in(path().string()); }
};

std::vector<std::string> telemetry_columns(const std::string& db) {
  Db raw(db);
  Stmt s(raw.handle(), "SELECT name FROM pragma_table_info('telemetry') ORDER BY cid");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.column_text(0));
  return out;
}

std::shared_ptr<const catalog::Catalog> catalog_of(std::vector<std::string> names) {
  std::vector<catalog::SignalSpec> signals;
  for (auto& n : names) {
    catalog::SignalSpec s;
    s.name = std::move(n);
    s.min = -1000;
    s.max = 1000;
    signals.push_back(std::move(s));
  }
  return std::make_shared<const catalog::Catalog>("test", 1, "", std::move(signals));
}

TelemetryRow row(const catalog::Catalog& c, int64_t seq, std::vector<double> values) {
  TelemetryRow r;
  r.t.car = "car-1";
  r.t.seq = seq;
  r.t.ts = 1000 * seq;
  r.t.values = std::move(values);
  r.t.values.resize(c.size(), core::kAbsent);
  return r;
}

TEST(SqliteCatalog, BuiltInCatalogKeepsTheTelemetryLayout) {
  StoreDir dir;
  { SqliteStore store(dir.db()); }
  std::vector<std::string> expected{"gen", "car", "ts", "seq", "lat", "lon"};
  for (const auto& s : core::kSignals) expected.emplace_back(s.name);
  expected.emplace_back("score");
  expected.emplace_back("flags");
  EXPECT_EQ(telemetry_columns(dir.db()), expected);
}

TEST(SqliteCatalog, VssFieldsAreTheColumns) {
  StoreDir dir;
  { SqliteStore store(dir.db(), {}, catalog_of({"Vehicle.Speed", "Vehicle.Cabin.Temperature"})); }
  EXPECT_EQ(telemetry_columns(dir.db()),
            (std::vector<std::string>{"gen", "car", "ts", "seq", "lat", "lon", "Vehicle_Speed",
                                      "Vehicle_Cabin_Temperature", "score", "flags"}));
}

TEST(SqliteCatalog, AnAddedSignalGetsAColumnAndADroppedOneKeepsIts) {
  StoreDir dir;
  const auto v1 = catalog_of({"speed", "coolant_temp"});
  const auto v2 = catalog_of({"speed", "oil_temp", "coolant_temp"});  // inserted in the middle
  const auto v3 = catalog_of({"coolant_temp"});
  {
    SqliteStore store(dir.db(), {}, v1);
    store.write({{row(*v1, 1, {10, 90})}, {}, {}, {}});
  }
  {
    SqliteStore store(dir.db(), {}, v2);
    store.write({{row(*v2, 2, {11, 120, 91})}, {}, {}, {}});
    const auto h = store.history("car-1", 0, 10'000);
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[0].t.values[0], 10);
    EXPECT_TRUE(core::absent(h[0].t.values[1]));  // written before the column existed
    EXPECT_EQ(h[0].t.values[2], 90);
    EXPECT_EQ(h[1].t.values, (std::vector<double>{11, 120, 91}));
  }
  EXPECT_EQ(telemetry_columns(dir.db()),
            (std::vector<std::string>{"gen", "car", "ts", "seq", "lat", "lon", "speed", "coolant_temp",
                                      "score", "flags", "oil_temp"}));
  {
    // A catalog without speed and oil_temp: their columns stay, unread; a new row leaves them NULL.
    SqliteStore store(dir.db(), {}, v3);
    store.write({{row(*v3, 3, {92})}, {}, {}, {}});
    const auto h = store.history("car-1", 0, 10'000);
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[1].t.values, std::vector<double>{91});
    EXPECT_EQ(store.hourly("car-1", "coolant_temp", 0, 10'000)[0].count, 3);
    EXPECT_THROW(store.hourly("car-1", "speed", 0, 10'000), std::invalid_argument);
  }
  EXPECT_EQ(telemetry_columns(dir.db()).size(), 11u);
  SqliteStore store(dir.db(), {}, v2);
  const auto h = store.history("car-1", 0, 10'000);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1].t.values, (std::vector<double>{11, 120, 91}));  // what v3 did not read is still there
  EXPECT_TRUE(core::absent(h[2].t.values[0]));
  EXPECT_EQ(h[2].t.values[2], 92);
}

// Moving a store to a catalog that renames its signals, keeping the old names as aliases (cardata-v1 to
// VSS): each renamed signal keeps its old column, so the history written before reads on under the new name,
// and only the signals that are really new get columns.
TEST(SqliteCatalog, ARenamedSignalKeepsItsColumnThroughItsAlias) {
  StoreDir dir;
  const auto v1 = catalog_of({"speed", "coolant_temp"});
  auto renamed = v1->signals();
  renamed[0].name = "Vehicle.Speed";
  renamed[0].field = "Vehicle_Speed";
  renamed[0].aliases = {"speed"};
  catalog::SignalSpec odometer;
  odometer.name = "Vehicle.TraveledDistance";
  odometer.max = 1e9;
  renamed.push_back(odometer);
  const auto v2 = std::make_shared<const catalog::Catalog>("test", 2, "", renamed);
  {
    SqliteStore store(dir.db(), {}, v1);
    store.write({{row(*v1, 1, {10, 90})}, {}, {}, {}});
  }
  SqliteStore store(dir.db(), {}, v2);
  store.write({{row(*v2, 2, {11, 91, 5000})}, {}, {}, {}});
  EXPECT_EQ(telemetry_columns(dir.db()),
            (std::vector<std::string>{"gen", "car", "ts", "seq", "lat", "lon", "speed", "coolant_temp",
                                      "score", "flags", "Vehicle_TraveledDistance"}));
  const auto h = store.history("car-1", 0, 10'000);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].t.values[0], 10);  // written as speed, read as Vehicle.Speed
  EXPECT_TRUE(core::absent(h[0].t.values[2]));
  EXPECT_EQ(h[1].t.values, (std::vector<double>{11, 91, 5000}));
  const auto hours = store.hourly("car-1", "Vehicle.Speed", 0, 10'000);
  ASSERT_EQ(hours.size(), 1u);
  EXPECT_EQ(hours[0].count, 2);
  EXPECT_EQ(hours[0].max, 11);
}

TEST(SqliteCatalog, UpgradesASchemaVersion2File) {
  StoreDir dir;
  { SqliteStore store(dir.db()); }
  {
    // What a version-2 build left: no flags column.
    Db raw(dir.db());
    raw.exec("ALTER TABLE telemetry DROP COLUMN flags");
    raw.exec("UPDATE meta SET value = 2 WHERE key = 'schema_version'");
  }
  ASSERT_EQ(telemetry_columns(dir.db()).back(), "score");
  SqliteStore store(dir.db());
  EXPECT_EQ(telemetry_columns(dir.db()).back(), "flags");
  Db raw(dir.db());
  EXPECT_EQ(raw.query_int("SELECT value FROM meta WHERE key = 'schema_version'"), 3);
  TelemetryRow r = row(*catalog::builtin(), 1, {200});
  r.t.out_of_range = {core::kCoolantTemp};
  store.write({{r}, {}, {}, {}});
  EXPECT_EQ(store.history("car-1", 0, 10'000).at(0), r);
}

TEST(SqliteCatalog, RefusesFieldsThatCannotBeColumns) {
  StoreDir dir;
  // SQLite column names ignore case; "gen" is the generation column.
  EXPECT_THROW(SqliteStore(dir.db(), {}, catalog_of({"Speed", "speed"})), SqliteError);
  EXPECT_THROW(SqliteStore(dir.db(), {}, catalog_of({"speed", "GEN"})), SqliteError);
  SqliteStore fine(dir.db(), {}, catalog_of({"speed", "generation"}));
  EXPECT_TRUE(fine.history("car-1", 0, 10).empty());
}

}  // namespace
}  // namespace fleettwin::store
