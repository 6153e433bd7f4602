#pragma once

// One real service for a whole gtest binary: started before the first test, stopped after the last.

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "support/process.h"

namespace fleettwin::testing {

/// A gtest environment that starts scripts/services/<name> and hands its address to `on_address`. A service
/// that does not start fails the run. Main thread only.
class ServiceEnvironment : public ::testing::Environment {
 public:
  ServiceEnvironment(std::string source_dir, std::string name,
                     std::function<void(const std::string&)> on_address)
      : _source_dir(std::move(source_dir)), _name(std::move(name)), _on_address(std::move(on_address)) {}
  void SetUp() override {
    try {
      _service = std::make_unique<Service>(_source_dir, _name);
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    _on_address(_service->address());
  }
  void TearDown() override { _service.reset(); }

 private:
  std::string _source_dir, _name;
  std::function<void(const std::string&)> _on_address;
  std::unique_ptr<Service> _service;
};

/// The preamble of a test binary that shares one service: registers a ServiceEnvironment for
/// scripts/services/<name> of `source_dir` and returns where its address will be, set before the first test
/// runs (empty until then). Call at namespace scope, once per service.
inline const std::string& service_for_all_tests(const std::string& source_dir, const std::string& name) {
  static std::map<std::string, std::string> addresses;  // a map keeps each element where it is
  std::string& address = addresses[name];
  ::testing::AddGlobalTestEnvironment(
      new ServiceEnvironment(source_dir, name, [&address](const std::string& a) { address = a; }));
  return address;
}

}  // namespace fleettwin::testing
