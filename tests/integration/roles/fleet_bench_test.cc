// `fleettwin bench fleet --faults` at a small scale: cars over MQTT through two mosquitto shards, two
// bridges, real Kafka, two copies of process, twin and sink, score, the API and the registry, each its own
// process, into a real PostgreSQL; every role killed once, Kafka, PostgreSQL and a shard restarted, the sinks
// stopped. The exactness check at the end must hold: nothing lost, nothing stored twice, every twin at its
// car's last message, every recovery measured.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <string>

#include "support/fleet_bench_report.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace fleettwin::testing;

TEST(FleetBench, EveryFaultOnceAndTheStoreHoldsEveryCarSeqExactlyOnce) {
  const TempDir dir("fleet-bench");
  const std::string json = dir.file("fleet.json");
  // Failures often enough that alerts raise schedule_service commands within the run.
  ::setenv("FLEETTWIN_SIM_FAILURE_RATE", "20", 1);
  const auto r = run(FLEETTWIN_BIN, {"bench", "fleet", "--cars", "400", "--interval", "1s", "--shards", "2",
                                     "--faults", "--fault-spacing", "12", "--sink-pause", "20", "--dir",
                                     dir.file("run"), "--json", json});
  ::unsetenv("FLEETTWIN_SIM_FAILURE_RATE");
  const std::string text = read_file(json);
  ASSERT_FALSE(text.empty()) << r.out;
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  ASSERT_EQ(parser.parse(text).get(e), simdjson::SUCCESS) << text;

  expect_exact_run(e, 400, 400 * 60, r.out);

  simdjson::dom::array faults;
  ASSERT_EQ(e["faults"].get(faults), simdjson::SUCCESS) << text;
  EXPECT_EQ(faults.size(), 11U) << text;  // 7 roles killed, Kafka, PostgreSQL, a shard, the sinks stopped
  for (auto f : faults) {
    std::string_view name;
    double recovery = -1;
    EXPECT_EQ(f["name"].get(name), simdjson::SUCCESS);
    EXPECT_EQ(f["recovery_s"].get(recovery), simdjson::SUCCESS);
    EXPECT_GE(recovery, 0) << name << " never recovered:\n" << text;
  }
  expect_roles(e, 11, true, text);  // registry, 2 x (bridge, process, twin, sink), score, api
  EXPECT_EQ(r.exit_code, 0) << r.out;
}
