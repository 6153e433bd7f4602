#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "registry/client.h"
#include "registry/server.h"

namespace fleettwin::registry::testing {

/// Fixture: an embedded schema registry on a free port, and a client of it, per test.
class EmbeddedRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server = std::make_unique<EmbeddedRegistry>(EmbeddedRegistryOptions{});
    server->start();
    client = std::make_shared<SchemaRegistryClient>(server->url());
  }
  std::unique_ptr<EmbeddedRegistry> server;
  std::shared_ptr<SchemaRegistryClient> client;
};

}  // namespace fleettwin::registry::testing
