// The store contract suite (store_contract.cc) against the SQLite adapter.
#include <filesystem>

#include "store/sqlite/sqlite_store.h"
#include "unit/store/store_contract.h"

namespace fleettwin::store {
namespace {

std::filesystem::path space_dir(const std::string& space) {
  return std::filesystem::temp_directory_path() / ("fleettwin-" + space);
}

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreContract,
    ::testing::Values(StoreFactory{
        "sqlite",
        [](const std::string& space) -> std::unique_ptr<TwinStore> {
          std::filesystem::create_directories(space_dir(space));
          return std::make_unique<SqliteStore>(SqliteStore::path_in(space_dir(space).string()));
        },
        [](const std::string& space) { std::filesystem::remove_all(space_dir(space)); }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace fleettwin::store
