// Which role copies on Kafka use the range assignor: those that must get a share of every topic they read.
// Cooperative-sticky balances the count of partitions over all topics, so a copy can end up with none of one
// topic: one sink copy got all of fleet.telemetry and fleet.twins (bench fleet), and a restarted aggregate
// copy only partials and none of the telemetry (aggregate_kill_integration, 2026-12-07).
#include <gtest/gtest.h>

#include "app/pipeline.h"

using namespace fleettwin;

TEST(Roles, CopiesThatMustShareEveryTopicTheyReadAreCoPartitioned) {
  EXPECT_TRUE(app::Roles::only("twin").co_partitioned());
  EXPECT_TRUE(app::Roles::only("sink").co_partitioned());
  EXPECT_TRUE(app::Roles::only("aggregate").co_partitioned()) << "telemetry (and scores) and partials";
  EXPECT_FALSE(app::Roles::only("process").co_partitioned()) << "one input topic";
  EXPECT_FALSE(app::Roles::only("score").co_partitioned());
  EXPECT_FALSE(app::Roles::only("sim").co_partitioned()) << "no stage";
  EXPECT_FALSE(app::Roles::all().co_partitioned()) << "up is one member";
}
