#pragma once

// The TwinStore contract: one parameterized gtest suite every adapter must pass. The TEST_Ps live
// in store_contract.cc; a test binary links that file and instantiates the suite with its adapters
// (INSTANTIATE_TEST_SUITE_P(..., StoreContract, ::testing::Values(StoreFactory{...}))).

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "store/twin_store.h"

namespace fleettwin::store {

/// Opens stores of one adapter. `space` names a fresh, empty data set per test (a directory or a
/// database name); opening the same space twice gives two independent instances on the same data. The
/// store follows `catalog` (null: the built-in one).
struct StoreFactory {
  using CatalogPtr = std::shared_ptr<const catalog::Catalog>;
  std::string name;
  std::function<std::unique_ptr<TwinStore>(const std::string& space, CatalogPtr catalog)> open;
  /// Called after the test with the same space, to delete its data.
  std::function<void(const std::string& space)> drop = [](const std::string&) {};
};

inline std::string PrintToString(const StoreFactory& f) { return f.name; }

/// The ids of `twins`, in their order: what listings are compared by.
inline std::vector<std::string> twin_ids(const std::vector<core::Twin>& twins) {
  std::vector<std::string> out;
  for (const auto& t : twins) out.push_back(t.id);
  return out;
}

/// A server adapter `Store` given a URI of another kind (`uri`) refuses it at once with an error that says
/// "bad URI" (a std::runtime_error), before it tries to connect anywhere.
template <typename Store>
void expect_bad_uri_refused(const std::string& uri) {
  try {
    Store s(uri);
    ADD_FAILURE() << "no error for " << uri;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad URI"), std::string::npos) << e.what();
  }
}

/// Fixture: a fresh space per test, `store` opened on it.
class StoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;
  /// Another instance on the same data, following `catalog` (null: the built-in one).
  std::unique_ptr<TwinStore> open_another(StoreFactory::CatalogPtr catalog = nullptr) {
    return GetParam().open(_space, std::move(catalog));
  }

  std::unique_ptr<TwinStore> store;

 private:
  std::string _space;
};

}  // namespace fleettwin::store
