// The store contract suite (store_contract.cc) against the SQLite adapter.
#include <map>
#include <memory>
#include <string>

#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"
#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

/// The directory of each space, from its first open (a second open must see the same data) to its drop.
std::map<std::string, std::unique_ptr<fleettwin::testing::TempDir>>& space_dirs() {
  static std::map<std::string, std::unique_ptr<fleettwin::testing::TempDir>> dirs;
  return dirs;
}

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreContract,
    ::testing::Values(StoreFactory{
        "sqlite",
        [](const std::string& space, StoreFactory::CatalogPtr catalog) -> std::unique_ptr<TwinStore> {
          auto& dir = space_dirs()[space];
          if (!dir) dir = std::make_unique<fleettwin::testing::TempDir>(space);
          return std::make_unique<SqliteStore>(SqliteStore::path_in(dir->path().string()), SqliteOptions{},
                                               std::move(catalog));
        },
        [](const std::string& space) { space_dirs().erase(space); }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace fleettwin::store
