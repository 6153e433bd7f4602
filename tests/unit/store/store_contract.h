#pragma once

// The TwinStore contract: one parameterized gtest suite every adapter must pass. The TEST_Ps live
// in store_contract.cc; a test binary links that file and instantiates the suite with its adapters
// (INSTANTIATE_TEST_SUITE_P(..., StoreContract, ::testing::Values(StoreFactory{...}))).

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "store/twin_store.h"

namespace fleettwin::store {

/// Opens stores of one adapter. `space` names a fresh, empty data set per test (a directory or a
/// database name); opening the same space twice gives two independent instances on the same data.
struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<TwinStore>(const std::string& space)> open;
  /// Called after the test with the same space, to delete its data.
  std::function<void(const std::string& space)> drop = [](const std::string&) {};
};

inline std::string PrintToString(const StoreFactory& f) { return f.name; }

/// Fixture: a fresh space per test, `store` opened on it.
class StoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::unique_ptr<TwinStore> open_another() { return GetParam().open(_space); }

  std::unique_ptr<TwinStore> store;

 private:
  std::string _space;
};

}  // namespace fleettwin::store
