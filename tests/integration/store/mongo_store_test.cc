// The store contract suite (tests/unit/store/store_contract.cc) against the MongoDB adapter on a real
// FerretDB started through scripts/services/ferretdb, plus what only a second backend can show: analytics
// equal to SQLite's on the same data.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "store/mongo/mongo_store.h"
#include "store/sqlite/sqlite_store.h"
#include "support/service_environment.h"
#include "support/temp_dir.h"
#include "unit/store/store_analytics.h"
#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

/// One server for the whole binary: mongodb://127.0.0.1:PORT/, with or without the slash.
const std::string& g_uri = fleettwin::testing::service_for_all_tests(FLEETTWIN_SOURCE_DIR, "ferretdb");

std::string uri_of(const std::string& database) {
  return g_uri + (g_uri.empty() || g_uri.back() != '/' ? "/" : "") + database;
}

StoreFactory mongo_factory() {
  return StoreFactory{
      "ferretdb",
      [](const std::string& space, StoreFactory::CatalogPtr catalog) -> std::unique_ptr<TwinStore> {
        return std::make_unique<MongoStore>(uri_of(space), MongoOptions{}, std::move(catalog));
      },
      [](const std::string& space) { MongoStore(uri_of(space)).drop_database(); }};
}

INSTANTIATE_TEST_SUITE_P(Mongo, StoreContract, ::testing::Values(mongo_factory()),
                         [](const auto& info) { return info.param.name; });

TEST(MongoStore, DetectsFerretDbAndUsesTheUriDatabase) {
  MongoStore s(uri_of("ft_caps"));
  EXPECT_TRUE(s.capabilities().ferretdb);
  EXPECT_FALSE(s.capabilities().change_streams);
  EXPECT_FALSE(s.capabilities().full_pipelines);
  EXPECT_FALSE(s.capabilities().version.empty());
  s.drop_database();
}

TEST(MongoStore, BadUriIsAClearError) { expect_bad_uri_refused<MongoStore>("postgres://nope"); }

TEST(MongoStore, AnalyticsEqualSqlite) {
  // One data set written to both stores; every analytic compared. Values are irregular on purpose.
  const fleettwin::testing::TempDir dir("mongo-eq");
  SqliteStore sqlite(SqliteStore::path_in(dir.path().string()));
  MongoStore store(uri_of("ft_equal"));
  store.drop_database();  // a leftover of an interrupted run
  expect_same_analytics(store, sqlite);
  store.drop_database();
}

}  // namespace
}  // namespace fleettwin::store
