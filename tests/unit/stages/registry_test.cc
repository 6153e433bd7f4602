// The stage registry is the one list of stages: each entry reads exactly the configuration keys its
// descriptor lists, and every name is unique.
#include "stages/registry.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "config/config.h"

using namespace fleettwin;

namespace {

std::set<std::string> keys_read_by(const stages::StageEntry& entry, config::Config& config) {
  std::set<std::string> read;
  config.record_reads(&read);
  core::Metrics metrics;
  core::SimClock clock(0);
  core::Histogram latency;
  stages::StageContext ctx{metrics, clock, latency, {}};
  entry.configure(config, ctx);
  config.record_reads(nullptr);
  return read;
}

std::set<std::string> keys_listed_by(const stages::StageEntry& entry) {
  std::set<std::string> listed;
  for (const auto* key : entry.descriptor().config_keys) listed.insert(key->name());
  return listed;
}

}  // namespace

TEST(StageRegistry, EachStageReadsExactlyTheKeysItsDescriptorLists) {
  ASSERT_FALSE(stages::registry().empty());
  for (const auto& entry : stages::registry()) {
    config::Config config;
    EXPECT_EQ(keys_read_by(entry, config), keys_listed_by(entry)) << "stage " << entry.descriptor().name;
  }
}

TEST(StageRegistry, TheCheckSeesAKeyADescriptorLeftOut) {
  // The recorder the test above relies on: configuring the twin stage reads both of its keys, so a
  // descriptor listing one of them would not match.
  const auto* twin = stages::find_stage("twin");
  ASSERT_NE(twin, nullptr);
  config::Config config;
  const auto read = keys_read_by(*twin, config);
  EXPECT_EQ(read.count("twin.offline_after"), 1u);
  EXPECT_EQ(read.count("twin.flush_interval"), 1u);
  EXPECT_NE(read, std::set<std::string>{"twin.offline_after"});
}

TEST(StageRegistry, NamesAreUniqueAndEveryStageIsFoundByName) {
  std::set<std::string> names;
  for (const auto& entry : stages::registry()) {
    const auto& d = entry.descriptor();
    EXPECT_TRUE(names.insert(d.name).second) << "two stages called " << d.name;
    EXPECT_EQ(stages::find_stage(d.name), &entry);
    EXPECT_FALSE(d.summary.empty()) << d.name << " has no summary for its role command";
    EXPECT_FALSE(d.inputs.empty()) << d.name << " reads no topic";
    for (const auto& flag : d.flags) EXPECT_NE(flag.key, nullptr) << d.name << " " << flag.flag;
  }
  EXPECT_EQ(stages::find_stage("no-such-stage"), nullptr);
}

TEST(StageRegistry, ConfiguringTheScoreStageRefusesAnImpossibleAlertRule) {
  const auto* score = stages::find_stage("score");
  ASSERT_NE(score, nullptr);
  config::Config config;
  config.set(config::keys::ml_raise_k, "5", "test");
  config.set(config::keys::ml_window_n, "3", "test");
  core::Metrics metrics;
  core::SimClock clock(0);
  core::Histogram latency;
  stages::StageContext ctx{metrics, clock, latency, {}};
  EXPECT_THROW(score->configure(config, ctx), config::ConfigError);
}
