#pragma once

// One real service for a whole gtest binary: started before the first test, stopped after the last.

#include <gtest/gtest.h>

#include <functional>
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

}  // namespace fleettwin::testing
