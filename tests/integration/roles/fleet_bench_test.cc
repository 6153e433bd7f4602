// `fleettwin bench fleet --faults` at a small scale: cars over MQTT through two mosquitto shards, two
// bridges, real Kafka, two copies of process, twin and sink, score, the API and the registry, each its own
// process, into a real PostgreSQL; every role killed once, Kafka, PostgreSQL and a shard restarted, the sinks
// stopped. The exactness check at the end must hold: nothing lost, nothing stored twice, every twin at its
// car's last message, every recovery measured.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <string>

#include "support/process.h"
#include "support/temp_dir.h"

using namespace fleettwin::testing;

namespace {

int64_t get_int(simdjson::dom::element e, const char* key) {
  int64_t v = -1;
  EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << key;
  return v;
}

}  // namespace

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

  EXPECT_EQ(get_int(e, "cars"), 400);
  const int64_t published = get_int(e, "published");
  EXPECT_GT(published, 400 * 60) << "the cars published for minutes";
  EXPECT_GE(get_int(e, "stored"), published);
  EXPECT_EQ(get_int(e, "lost"), 0) << r.out;
  EXPECT_EQ(get_int(e, "duplicates"), 0) << r.out;
  EXPECT_EQ(get_int(e, "twins_behind"), 0) << r.out;
  EXPECT_EQ(get_int(e, "commands_answered"), get_int(e, "commands_sent")) << r.out;

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
  simdjson::dom::object roles;
  ASSERT_EQ(e["roles"].get(roles), simdjson::SUCCESS);
  EXPECT_EQ(roles.size(), 11U) << text;  // registry, 2 x (bridge, process, twin, sink), score, api
  for (auto [name, usage] : roles) {
    double cpu = 0;
    EXPECT_EQ(usage["cpu_s"].get(cpu), simdjson::SUCCESS);
    EXPECT_GT(cpu, 0) << name;
    int64_t crashes = -1;
    EXPECT_EQ(usage["crashes"].get(crashes), simdjson::SUCCESS);
    EXPECT_EQ(crashes, 0) << name << " exited on its own";
  }
  EXPECT_EQ(r.exit_code, 0) << r.out;
}
