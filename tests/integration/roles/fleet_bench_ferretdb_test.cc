// `fleettwin bench fleet --store mongo` at a tiny scale: the same topology as fleet_bench_test.cc (cars over
// MQTT, bridge, real Kafka, process, twin, sink, score, the API and the registry, each its own process) into
// the MongoDB store on a real FerretDB, no faults. The exactness check at the end must hold on that store
// too: nothing lost, nothing stored twice, every twin at its car's last message, and a publish-to-stored
// latency read from the telemetry documents' stored time.
#include <gtest/gtest.h>
#include <simdjson.h>

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

double get_double(simdjson::dom::element e, const char* key) {
  double v = -1;
  EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << key;
  return v;
}

}  // namespace

TEST(FleetBenchFerretDb, TheMongoStoreHoldsEveryCarSeqExactlyOnce) {
  const TempDir dir("fleet-bench-ferretdb");
  const std::string json = dir.file("fleet.json");
  const auto r =
      run(FLEETTWIN_BIN, {"bench", "fleet", "--store", "mongo", "--cars", "100", "--interval", "5s",
                          "--seconds", "30", "--copies", "1", "--dir", dir.file("run"), "--json", json});
  const std::string text = read_file(json);
  ASSERT_FALSE(text.empty()) << r.out;
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  ASSERT_EQ(parser.parse(text).get(e), simdjson::SUCCESS) << text;

  EXPECT_EQ(get_int(e, "cars"), 100);
  const int64_t published = get_int(e, "published");
  EXPECT_GE(published, 100 * 5) << "every car published for 30 s";
  EXPECT_GE(get_int(e, "stored"), published);
  EXPECT_EQ(get_int(e, "lost"), 0) << r.out;
  EXPECT_EQ(get_int(e, "duplicates"), 0) << r.out;
  EXPECT_EQ(get_int(e, "twins_behind"), 0) << r.out;
  EXPECT_EQ(get_int(e, "commands_answered"), get_int(e, "commands_sent")) << r.out;
  // The latency comes from each document's stored time: a stored time before the publish, or none, would
  // show as a negative or an epoch-sized figure.
  EXPECT_GT(get_double(e, "msgs_per_s"), 0) << text;
  const double p50 = get_double(e, "p50_latency_ms"), p99 = get_double(e, "p99_latency_ms");
  EXPECT_GT(p50, 0) << text;
  EXPECT_GE(p99, p50) << text;
  EXPECT_LT(p99, 60'000) << text;

  simdjson::dom::object roles;
  ASSERT_EQ(e["roles"].get(roles), simdjson::SUCCESS);
  EXPECT_EQ(roles.size(), 7U) << text;  // registry, bridge, process, twin, sink, score, api
  for (auto [name, usage] : roles) {
    int64_t crashes = -1;
    EXPECT_EQ(usage["crashes"].get(crashes), simdjson::SUCCESS);
    EXPECT_EQ(crashes, 0) << name << " exited on its own";
  }
  EXPECT_EQ(r.exit_code, 0) << r.out;
}
