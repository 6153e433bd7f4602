// The stage registry is the one list of stages: each entry reads exactly the configuration keys its
// descriptor lists, and every name is unique.

// GCC 12 at -O2 calls StageContext's shared_ptr members "maybe uninitialized" in the standard headers where
// the aggregate is destroyed after configure() throws; every member has an initializer (a false positive of
// -Wmaybe-uninitialized with large aggregates). Before the includes: the warning is located in them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

// Issue 16 item 8: `fleettwin score` (one role on Kafka) waits for a model on fleet.models unless told to
// train its own (ml.warmup_in_role, `--train-warmup`); `up`, which runs everything, trains after ml.warmup.
TEST(StageRegistry, TheScoreRoleAloneWaitsForAPublishedModelUnlessToldToTrain) {
  const auto* score = stages::find_stage("score");
  ASSERT_NE(score, nullptr);
  const auto warmup_of = [&](bool single_role, bool trains) {
    config::Config config;
    config.set(config::keys::ml_warmup, "2m", "test");
    if (trains) config.set(config::keys::ml_warmup_in_role, "true", "test");
    core::Metrics metrics;
    core::SimClock clock(0);
    core::Histogram latency;
    stages::StageContext ctx{metrics, clock, latency, {}};
    ctx.single_role = single_role;
    score->configure(config, ctx);
    return ctx.score.warmup_ms;
  };
  EXPECT_EQ(warmup_of(false, false), 120'000);  // up: trains after the warm-up
  EXPECT_EQ(warmup_of(true, false), 0);         // the role: waits for fleet.models
  EXPECT_EQ(warmup_of(true, true), 120'000);    // the role told to train
  EXPECT_EQ(warmup_of(false, true), 120'000);
  // The role command offers the switch.
  const auto& flags = score->descriptor().flags;
  ASSERT_EQ(flags.size(), 1u);
  EXPECT_EQ(flags[0].flag, "--train-warmup");
  EXPECT_EQ(flags[0].key, &config::keys::ml_warmup_in_role);
}
