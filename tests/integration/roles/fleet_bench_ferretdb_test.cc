// `fleettwin bench fleet --store mongo` at a tiny scale: the same topology as fleet_bench_test.cc (cars over
// MQTT, bridge, real Kafka, process, twin, sink, score, the API and the registry, each its own process) into
// the MongoDB store on a real FerretDB, no faults. The exactness check at the end must hold on that store
// too: nothing lost, nothing stored twice, every twin at its car's last message, and a publish-to-stored
// latency read from the telemetry documents' stored time.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "support/fleet_bench_report.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace fleettwin::testing;

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

  expect_exact_run(e, 100, 100 * 5, r.out);
  // The latency comes from each document's stored time: a stored time before the publish, or none, would
  // show as a negative or an epoch-sized figure.
  EXPECT_GT(report_double(e, "msgs_per_s"), 0) << text;
  const double p50 = report_double(e, "p50_latency_ms"), p99 = report_double(e, "p99_latency_ms");
  EXPECT_GT(p50, 0) << text;
  EXPECT_GE(p99, p50) << text;
  EXPECT_LT(p99, 60'000) << text;

  expect_roles(e, 7, false, text);  // registry, bridge, process, twin, sink, score, api
  EXPECT_EQ(r.exit_code, 0) << r.out;
}
