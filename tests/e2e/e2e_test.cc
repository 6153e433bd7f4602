#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "codec/json.h"
#include "stages/registry.h"
#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// Runs the fleettwin binary; every `up` gets its own registry port, since tests run side by side.
fleettwin::testing::Result run(std::vector<std::string> args) {
  if (!args.empty() && args[0] == "up")
    args.insert(args.end(), {"--registry-listen", "127.0.0.1:0", "--http", "127.0.0.1:0"});
  return fleettwin::testing::run(FLEETTWIN_BIN, args);
}

pid_t spawn(std::vector<std::string> args, const std::string& log_path) {
  if (args[0] == "up") args.insert(args.end(), {"--registry-listen", "127.0.0.1:0", "--http", "127.0.0.1:0"});
  return fleettwin::testing::spawn(FLEETTWIN_BIN, args, log_path);
}

using fleettwin::testing::read_file;

/// The --summary-json file as numbers.
std::map<std::string, double> summary(const fs::path& p) {
  simdjson::dom::parser parser;
  auto doc = parser.load(p.string());
  std::map<std::string, double> out;
  for (auto [k, v] : doc.get_object()) {
    if (v.is_bool()) {
      out[std::string(k)] = bool(v) ? 1 : 0;
    } else {
      out[std::string(k)] = double(v);
    }
  }
  return out;
}

/// Expects every field of `want` in `summary` with that value.
void expect_summary(const std::map<std::string, double>& summary,
                    const std::vector<std::pair<std::string, double>>& want) {
  for (const auto& [field, value] : want) {
    const auto it = summary.find(field);
    ASSERT_NE(it, summary.end()) << "no " << field << " in the summary";
    EXPECT_EQ(it->second, value) << field;
  }
}

/// Each test's files in a directory of its own, kept when the test fails.
class E2E : public ::testing::Test {
 protected:
  const fleettwin::testing::TempDir tmp{
      "e2e-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())};
  const fs::path dir = tmp.path();
  const std::string data = (dir / "data").string();

  /// Runs `fleettwin up args... --data-dir <data> --summary-json <file>` to completion and returns its
  /// summary; nothing, with a failure that shows its output, when it exits other than 0.
  std::optional<std::map<std::string, double>> up(const std::vector<std::string>& args) {
    const auto json = (dir / "summary.json").string();
    std::vector<std::string> all{"up"};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"--data-dir", data, "--summary-json", json});
    const auto r = run(all);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "fleettwin up exited " << r.exit_code << ":\n" << r.out;
      return std::nullopt;
    }
    return summary(json);
  }
};

}  // namespace

TEST_F(E2E, ThousandCarsTenSimulatedMinutesStoredExactlyOnce) {
  const auto s = up({"--fast", "--cars", "1000", "--interval", "1s", "--duration", "10m", "--seed", "7"});
  ASSERT_TRUE(s);
  // 1,000 cars x 600 one-second intervals.
  expect_summary(*s, {{"cars", 1000},
                      {"published", 600000},
                      {"processed", 600000},
                      {"dlq", 0},
                      {"stored_telemetry", 600000},
                      {"twins", 1000},
                      {"lost", 0},
                      {"duplicates", 0},
                      {"twins_behind", 0},
                      {"clean", 1}});
  EXPECT_GT(s->at("msgs_per_s"), 0);
  EXPECT_GT(s->at("peak_rss_mb"), 0);
  EXPECT_TRUE(fs::exists(fs::path(data) / "ground_truth.jsonl"));

  // Every twin holds its car's last message.
  fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string());
  for (const auto& twin : store.list_twins({.limit = 2000})) {
    EXPECT_EQ(twin.reported.seq, 600) << twin.id;
    EXPECT_EQ(twin.messages, 600) << twin.id;
  }
  auto got = run({"twin", "get", "car-00042", "--data-dir", data});
  ASSERT_EQ(got.exit_code, 0) << got.out;
  fleettwin::core::Twin twin;
  std::string error;
  ASSERT_TRUE(fleettwin::codec::twin_from_json(got.out, twin, &error)) << error << got.out;
  EXPECT_EQ(twin.id, "car-00042");
  EXPECT_EQ(twin.reported.seq, 600);
  auto list = run({"twin", "list", "--limit", "5", "--data-dir", data});
  ASSERT_EQ(list.exit_code, 0) << list.out;
  EXPECT_NE(list.out.find("car-00004"), std::string::npos) << list.out;
}

TEST_F(E2E, HistoryRetentionRemovesOldRowsAndTheExactnessCheckStillHolds) {
  // Three simulated minutes of history kept, enforced every second: most of the 15 minutes are removed while
  // the run goes on, and the check counts each car from its oldest kept seq.
  ::setenv("FLEETTWIN_STORE_HISTORY_RETENTION", "3m", 1);
  ::setenv("FLEETTWIN_STORE_RETENTION_INTERVAL", "1s", 1);
  const auto s = up({"--fast", "--cars", "100", "--interval", "1s", "--duration", "15m", "--seed", "5"});
  ::unsetenv("FLEETTWIN_STORE_HISTORY_RETENTION");
  ::unsetenv("FLEETTWIN_STORE_RETENTION_INTERVAL");
  ASSERT_TRUE(s);
  expect_summary(*s,
                 {{"published", 90000}, {"lost", 0}, {"duplicates", 0}, {"twins_behind", 0}, {"clean", 1}});
  // SQLite removes whole generations of rows once their newest row is past the cutoff, so some rows older
  // than three minutes remain; every car lost its first ones.
  EXPECT_LT(s->at("stored_telemetry"), 90000 * 0.8) << "retention removed too little";
  fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string());
  const auto oldest = store.oldest_per_car();
  ASSERT_EQ(oldest.size(), 100U);
  for (const auto& row : oldest) EXPECT_GT(row.seq, 1) << row.car;
}

TEST_F(E2E, InjectedMalformedPayloadsGoToTheDlqAndNothingElse) {
  const auto s =
      up({"--fast", "--cars", "200", "--interval", "1s", "--duration", "2m", "--inject-invalid", "60"});
  ASSERT_TRUE(s);
  expect_summary(*s, {{"injected_invalid", 60},
                      {"dlq", 60},
                      {"published", 24000},
                      {"valid", 24000},
                      {"stored_telemetry", 24000},
                      {"lost", 0},
                      {"duplicates", 0}});
}

TEST_F(E2E, KilledMidRunResumesWithoutDuplicatesAndConsistentTwins) {
  const std::vector<std::string> args{"--fast",     "--cars", "1000",   "--interval", "1s",
                                      "--duration", "10m",    "--seed", "3"};
  std::vector<std::string> first{"up"};
  first.insert(first.end(), args.begin(), args.end());
  first.insert(first.end(), {"--data-dir", data});
  const pid_t pid = spawn(first, (dir / "first.log").string());
  // Let it store part of the run, then kill it without warning.
  const auto db = fs::path(data) / "fleettwin.db";
  int64_t rows_at_kill = 0;
  for (int i = 0; i < 6000; ++i) {
    std::this_thread::sleep_for(10ms);
    if (!fs::exists(db)) continue;
    try {
      // Read-only in effect; it can meet the file while `up` is still creating the schema: try again then.
      fleettwin::store::SqliteStore probe(db.string());
      rows_at_kill = probe.history_stats().rows;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "probe: %s (retrying)\n", e.what());
      continue;
    }
    if (rows_at_kill > 10000) break;
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << read_file(dir / "first.log");
  ASSERT_GT(rows_at_kill, 10000) << read_file(dir / "first.log");
  ASSERT_LT(rows_at_kill, 600000) << "the run finished before it could be killed";

  const auto s = up(args);
  ASSERT_TRUE(s);
  // 1,000 cars x 600 messages, across both runs.
  expect_summary(
      *s,
      {{"stored_telemetry", 600000}, {"lost", 0}, {"duplicates", 0}, {"twins", 1000}, {"twins_behind", 0}});
  fleettwin::store::SqliteStore store(db.string());
  const auto stats = store.history_stats();
  EXPECT_EQ(stats.rows, stats.distinct);
  for (const auto& twin : store.list_twins({.limit = 2000})) {
    EXPECT_EQ(twin.reported.seq, 600) << twin.id;
  }
}

TEST_F(E2E, BadFlagsSayWhatIsWrong) {
  auto r = run({"up", "--cars", "lots"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--cars"), std::string::npos) << r.out;
  r = run({"up", "--interval", "10 parsecs"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("unknown duration unit"), std::string::npos) << r.out;
  r = run({"twin", "get", "car-1", "--data-dir", (dir / "nothing-here").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("no fleettwin store"), std::string::npos) << r.out;
  std::ofstream(dir / "bad.yaml") << "sim:\n  carz: 10\n";
  r = run({"--config", (dir / "bad.yaml").string(), "up"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("sim.carz"), std::string::npos) << r.out;
}

TEST(ConfigDocs, CheckedInReferenceMatchesTheKeyTable) {
  auto r = run({"config", "docs"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, read_file(fs::path(FLEETTWIN_SOURCE_DIR) / "docs" / "configuration.md"))
      << "regenerate with: fleettwin config docs > docs/configuration.md";
}

TEST(Roles, EveryStageOfTheRegistryIsACommandWithItsSummary) {
  auto help = run({"--help"});
  ASSERT_EQ(help.exit_code, 0);
  for (const auto& entry : fleettwin::stages::registry()) {
    const auto& d = entry.descriptor();
    EXPECT_NE(help.out.find("Run the " + d.name + " stage: " + d.summary), std::string::npos) << help.out;
    auto r = run({d.name, "--help"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("--kafka"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--group"), std::string::npos) << r.out;
    for (const auto& f : d.flags) EXPECT_NE(r.out.find(f.flag), std::string::npos) << d.name << ": " << r.out;
  }
  // A role needs Kafka: a clear error, not a silent embedded run.
  auto r = run({"process"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--kafka"), std::string::npos) << r.out;
}

TEST_F(E2E, CatalogCheckSaysWhatChangedAndWhetherItIsCompatible) {
  const std::string catalogs = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/";
  auto r = run({"catalog", "check", catalogs + "vss.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("catalog vss v2: 25 signals"), std::string::npos) << r.out;
  r = run({"catalog", "check", catalogs + "vss.yaml", "--against", catalogs + "cardata-v1.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("renamed: Vehicle.Speed (was speed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("added: Vehicle.TraveledDistance"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("compatible: "), std::string::npos) << r.out;

  // A unit change is refused as incompatible (exit 1), naming the signal.
  std::string kmh = read_file(catalogs + "cardata-v1.yaml");
  kmh.replace(kmh.find("unit: m/s,"), 10, "unit: km/h,");
  std::ofstream(dir / "kmh.yaml") << kmh;
  r = run({"catalog", "check", (dir / "kmh.yaml").string(), "--against", "builtin"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("unit changed: speed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("INCOMPATIBLE"), std::string::npos) << r.out;

  // Not a catalog: exit 2 with the file, the line and the key.
  std::ofstream(dir / "bad.yaml")
      << "catalog: x\nversion: 1\nsignals:\n  - {name: a, type: float, min: 0, max: 1}\n";
  r = run({"catalog", "check", (dir / "bad.yaml").string()});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.yaml:4: signals[0].type"), std::string::npos) << r.out;

  // `show` prints the catalog in use, which `check` accepts again.
  r = run({"catalog", "show", "--catalog", catalogs + "vss.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ofstream(dir / "shown.yaml") << r.out;
  r = run({"catalog", "check", (dir / "shown.yaml").string(), "--against", catalogs + "vss.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("no change to any signal"), std::string::npos) << r.out;
}

// A fleet on the VSS catalog, half of it on newer firmware: the cars send VSS names (the upgraded half also
// the catalog's version-2 signals), `up --catalog vss.yaml` takes them all, stores them under their VSS
// fields and answers queries by VSS names.
TEST_F(E2E, VssNamedMixedFleetEndToEnd) {
  const std::string vss = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml";
  const auto s = up({"--fast", "--cars", "100", "--interval", "1s", "--duration", "2m", "--seed", "5",
                     "--catalog", vss, "--sim-catalog", vss, "--upgraded-share", "0.5"});
  ASSERT_TRUE(s);
  expect_summary(*s, {{"published", 12000},
                      {"processed", 12000},
                      {"dlq", 0},
                      {"stored_telemetry", 12000},
                      {"twins", 100},
                      {"lost", 0},
                      {"duplicates", 0}});

  const auto catalog =
      std::make_shared<const fleettwin::catalog::Catalog>(fleettwin::catalog::load_file(vss));
  const std::size_t speed = catalog->index_of("Vehicle.Speed");
  const std::size_t odometer = catalog->index_of("Vehicle.TraveledDistance");
  fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string(), {}, catalog);
  int upgraded = 0;
  for (const auto& twin : store.list_twins({.limit = 200})) {
    EXPECT_FALSE(fleettwin::core::absent(twin.reported.values[speed])) << twin.id;
    if (!fleettwin::core::absent(twin.reported.values[odometer])) ++upgraded;
  }
  EXPECT_EQ(upgraded, 50);
  // Every history row of an upgraded car carries its odometer; no row of another car does.
  int with = 0, without = 0;
  for (const auto& twin : store.list_twins({.limit = 200})) {
    const bool up_car = !fleettwin::core::absent(twin.reported.values[odometer]);
    for (const auto& row : store.history(twin.id, 0, std::numeric_limits<int64_t>::max())) {
      EXPECT_EQ(fleettwin::core::absent(row.t.values[odometer]), !up_car) << twin.id << "/" << row.t.seq;
      (up_car ? with : without) += 1;
    }
  }
  EXPECT_EQ(with, 6000);
  EXPECT_EQ(without, 6000);

  // The CLI answers by VSS names, and by the cardata names the catalog keeps as aliases.
  auto got = run({"twin", "get", "car-00001", "--data-dir", data, "--catalog", vss});
  ASSERT_EQ(got.exit_code, 0) << got.out;
  EXPECT_NE(got.out.find("\"Vehicle.Speed\""), std::string::npos) << got.out;
  for (const std::string signal : {"Vehicle.Speed", "speed"}) {
    auto hourly = run({"query", "hourly", "car-00001", signal, "--data-dir", data, "--catalog", vss, "--from",
                       "1", "--to", "9999999999999"});
    ASSERT_EQ(hourly.exit_code, 0) << hourly.out;
    // The car's 120 readings, in one hour or two.
    int64_t count = 0;
    const std::regex re("\"count\":(\\d+)");
    for (std::sregex_iterator it(hourly.out.begin(), hourly.out.end(), re), end; it != end; ++it)
      count += std::stoll((*it)[1]);
    EXPECT_EQ(count, 120) << signal << ": " << hourly.out;
  }
}

// A CSV from another simulator whose rows carry implausible readings: every row is stored, the implausible
// values kept and flagged, an empty cell stored as absent; nothing goes to the DLQ.
TEST_F(E2E, CsvReplayStoresOutOfRangeRowsFlagged) {
  const std::string csv = std::string(FLEETTWIN_SOURCE_DIR) + "/tests/fixtures/sim/cardata_out_of_range.csv";
  const auto s = up({"--fast", "--replay", csv});
  ASSERT_TRUE(s);
  expect_summary(*s, {{"processed", 6}, {"dlq", 0}, {"stored_telemetry", 6}, {"lost", 0}, {"duplicates", 0}});

  namespace core = fleettwin::core;
  fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string());
  const auto flagged = [&](const std::string& car) {
    std::vector<std::vector<std::string>> out;
    for (const auto& row : store.history(car, 0, std::numeric_limits<int64_t>::max())) {
      std::vector<std::string> names;
      for (const auto i : row.t.out_of_range) names.emplace_back(core::kSignals[i].name);
      out.push_back(names);
    }
    return out;
  };
  using Rows = std::vector<std::vector<std::string>>;
  EXPECT_EQ(flagged("car-00001"), (Rows{{}, {"coolant_temp"}, {"coolant_temp"}}));
  EXPECT_EQ(flagged("car-00002"),
            (Rows{{"battery_percentage"}, {"tire_pressure_1_2", "tire_pressure_2_2"}, {}}));
  const auto rows = store.history("car-00002", 0, std::numeric_limits<int64_t>::max());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].t.values[core::kBatteryPercentage], 104.5);  // kept as read
  EXPECT_EQ(rows[1].t.values[core::kTirePressure22], -2);
  EXPECT_TRUE(core::absent(rows[2].t.values[core::kSpeed]));  // the empty cell
  // The twin shows the car's last state: its tyres read plausibly again, speed kept from before.
  const auto twin = store.get_twin("car-00002");
  ASSERT_TRUE(twin);
  EXPECT_TRUE(twin->reported.out_of_range.empty());
  EXPECT_EQ(twin->reported.values[core::kSpeed], 0);
}

// A data dir's schema registry keeps the CarTelemetry versions it registered: `up` on a catalog that cannot
// read what was written before (a signal's type changed) is refused at start, saying why, and writes nothing.
TEST_F(E2E, AnIncompatibleCatalogIsRefusedBeforeAnythingIsWritten) {
  ASSERT_TRUE(up({"--fast", "--cars", "10", "--interval", "1s", "--duration", "10s"}));
  const std::string db = (fs::path(data) / "fleettwin.db").string();
  const auto before = fleettwin::store::SqliteStore(db).history_stats();
  ASSERT_EQ(before.rows, 100);
  const std::string incompatible =
      std::string(FLEETTWIN_SOURCE_DIR) + "/tests/fixtures/catalogs/cardata-incompatible.yaml";
  const auto r = run({"up", "--fast", "--cars", "10", "--interval", "1s", "--duration", "20s", "--catalog",
                      incompatible, "--data-dir", data});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("is not compatible with the CarTelemetry schema already registered"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("coolant_temp"), std::string::npos) << r.out;
  EXPECT_EQ(fleettwin::store::SqliteStore(db).history_stats().rows, before.rows);
}

// `fleettwin query aggregates`: the stored windows of one aggregate from the store of a data dir, one JSON
// document per window or a table; a bad name is refused before the store is opened.
TEST_F(E2E, QueryAggregatesPrintsTheStoredWindows) {
  fs::create_directories(data);
  {
    fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string());
    constexpr int64_t kT0 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
    std::vector<fleettwin::store::AggregateRow> rows;
    for (int64_t h = 0; h < 3; ++h) {
      for (const std::string car : {"car-00001", "car-00002"}) {
        rows.push_back({"summary_1h",
                        car,
                        kT0 + h * 3'600'000,
                        kT0 + (h + 1) * 3'600'000,
                        1,
                        true,
                        10 + h,
                        {{"speed_mean", 1.5 * static_cast<double>(h)}, {"coolant_temp_max", std::nan("")}}});
      }
    }
    store.upsert_aggregates(rows);
  }
  auto json = run({"query", "aggregates", "summary_1h", "--car", "car-00002", "--data-dir", data});
  ASSERT_EQ(json.exit_code, 0) << json.out;
  EXPECT_NE(json.out.find(R"({"aggregate":"summary_1h","group":"car-00002","start":1767229200000,)"
                          R"("end":1767232800000,"revision":1,"final":true,"count":11,)"
                          R"("values":{"speed_mean":1.5,"coolant_temp_max":null}})"),
            std::string::npos)
      << json.out;
  EXPECT_EQ(json.out.find("car-00001"), std::string::npos) << json.out;
  auto all = run({"query", "aggregates", "summary_1h", "--data-dir", data, "--from", "1767229200000",
                  "--format", "table"});
  ASSERT_EQ(all.exit_code, 0) << all.out;
  EXPECT_NE(all.out.find("speed_mean"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("2026-01-01T02:00:00Z"), std::string::npos) << all.out;
  EXPECT_EQ(all.out.find("T00:00:00Z"), std::string::npos) << all.out;  // the window before --from
  auto bad = run({"query", "aggregates", "Bad-Name", "--data-dir", data});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("bad aggregate name"), std::string::npos) << bad.out;
}

// Issue 19 on the embedded pipeline: `up` runs the aggregate stage and the sink stores its results in
// SQLite; a second run on the data dir continues the windows the first left open (the state table, whose
// last flush a clean stop saves), so every full 5 minutes of a car holds its 300 events once.
TEST_F(E2E, UpStoresWindowAggregatesAndAResumedRunContinuesTheOpenWindows) {
  const std::vector<std::string> common{"--fast", "--cars", "20", "--interval", "1s", "--seed", "5"};
  auto first = common;
  first.insert(first.end(), {"--duration", "12m"});
  ASSERT_TRUE(up(first));
  EXPECT_TRUE(fs::exists(fs::path(data) / "aggregate_state.sqlite"));
  auto second = common;
  second.insert(second.end(), {"--duration", "23m"});
  const auto s = up(second);
  ASSERT_TRUE(s);
  expect_summary(*s, {{"lost", 0}, {"duplicates", 0}, {"clean", 1}});
  fleettwin::store::SqliteStore store((fs::path(data) / "fleettwin.db").string());
  fleettwin::store::AggregateQuery q;
  q.aggregate = "events_5m";
  const auto rows = store.aggregates(q);
  std::map<std::string, std::vector<fleettwin::store::AggregateRow>> by_car;
  for (const auto& r : rows) by_car[r.group].push_back(r);
  ASSERT_EQ(by_car.size(), 20U);
  for (const auto& [car, windows] : by_car) {
    // The first window is partial (the run starts on a whole second); the one the first run left open at
    // minute 12 is complete, and those after it too, up to the last closed one.
    ASSERT_GE(windows.size(), 4U) << car;
    for (std::size_t i = 1; i < windows.size(); ++i) {
      EXPECT_EQ(windows[i].count, 300) << car << " " << windows[i].window_start_ms;
      EXPECT_EQ(windows[i].window_end_ms - windows[i].window_start_ms, 300'000);
      EXPECT_EQ(windows[i].revision, 1U);
    }
  }
}
