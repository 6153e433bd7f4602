// A rolling upgrade of the signal catalog on a real Kafka broker: process roles on cardata-v1 and on v2 (v1
// plus two `since: 2` signals, tests/fixtures/catalogs/cardata-v2.yaml) write CarTelemetry to fleet.telemetry
// at the same time, each under its catalog's schema. A sink on v2 and a twin on v1 read both versions by
// schema resolution: nothing rejected, nothing lost, the new signals carried where a v2 process wrote them. A
// catalog the registry's BACKWARD rule refuses stops its process at start with a message naming the field.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "catalog/catalog.h"
#include "codec/avro.h"
#include "codec/json.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "registry/client.h"
#include "registry/protocol.h"
#include "registry/telemetry_reader.h"
#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/roles.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;
namespace topics = core::topics;

namespace {

constexpr int kCars = 20;
constexpr int kOldRounds = 5;  // messages per car before the v2 process joins

const std::string kV1 = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/cardata-v1.yaml";
const std::string kV2 = std::string(FLEETTWIN_SOURCE_DIR) + "/tests/fixtures/catalogs/cardata-v2.yaml";
const std::string kIncompatible =
    std::string(FLEETTWIN_SOURCE_DIR) + "/tests/fixtures/catalogs/cardata-incompatible.yaml";

std::string car_id(int c) { return "car-" + std::to_string(1000 + c); }
/// After the first rounds, the odd cars are on firmware 2 (a mixed fleet, as in a rolling upgrade).
int firmware_of(int c, int64_t seq) { return seq > kOldRounds && c % 2 == 1 ? 2 : 1; }
bool upgraded(const std::string& car, int64_t seq) {
  return firmware_of(std::stoi(car.substr(4)) - 1000, seq) == 2;
}
double odometer(int64_t seq) { return 1000.5 + static_cast<double>(seq); }

/// The raw JSON of car `c`'s message `seq`: cardata-v1 signals, plus the v2 ones when `firmware` is 2.
std::string raw_json(int c, int64_t seq, int firmware) {
  core::Telemetry t;
  t.car = car_id(c);
  t.seq = seq;
  t.ts = 1'700'000'000'000 + seq * 1000;
  t.lat = 48.1;
  t.lon = 11.5;
  for (std::size_t i = 0; i < core::kSignalCount; ++i) t.values[i] = core::kSignals[i].min;
  t.values[core::kSpeed] = 10 + c;
  std::string json;
  codec::encode_json(t, json);
  if (firmware >= 2)
    json.insert(json.size() - 1, ",\"odometer\":" + std::to_string(odometer(seq)) + ",\"cabin_temp\":21");
  return json;
}

/// What the test's own readers saw on fleet.telemetry, per (car, seq).
struct Seen {
  int32_t schema_id = 0;
  core::Telemetry as_v2;
};
using SeenMap = std::map<std::pair<std::string, int64_t>, Seen>;

/// Reads fleet.telemetry as two more readers would, one on catalog v2 and one still on v1: every record must
/// read with both. Keeps what the v2 reader saw, with the writer's schema id.
class TelemetryWatcher {
 public:
  TelemetryWatcher(log::Log& log, const std::shared_ptr<registry::SchemaRegistryClient>& client,
                   const std::shared_ptr<const catalog::Catalog>& v2)
      : _v2(client, v2), _v1(client), _consumer(log.consumer("evolution-test-reader")) {
    _consumer->subscribe({topics::kTelemetry});
  }
  ~TelemetryWatcher() { _consumer->close(); }

  void read_some() {
    core::Telemetry t1;
    std::string error;
    for (const auto& r : _consumer->poll(1000, 500ms)) {
      Seen s;
      if (!_v2.read(r.value, s.as_v2, &error) || !_v1.read(r.value, t1, &error)) {
        ADD_FAILURE() << error;
        continue;
      }
      std::string_view body;
      codec::read_confluent_header(r.value, s.schema_id, body);
      _seen[{s.as_v2.car, s.as_v2.seq}] = std::move(s);
    }
  }
  /// Reads until `n` distinct messages came through.
  bool read_until(int64_t n, std::chrono::seconds limit) {
    return eventually(
        [&] {
          read_some();
          return static_cast<int64_t>(_seen.size()) >= n;
        },
        limit);
  }
  /// Whether the messages after `seq` came through writers of two schema versions.
  bool both_versions_after(int64_t seq) const {
    std::set<int32_t> ids;
    for (const auto& [key, s] : _seen)
      if (key.second > seq) ids.insert(s.schema_id);
    return ids.size() == 2;
  }
  const SeenMap& seen() const { return _seen; }

 private:
  registry::TelemetryReader _v2, _v1;
  std::unique_ptr<log::Consumer> _consumer;
  SeenMap _seen;
};

bool started(const std::string& log_path) {
  return eventually([&] { return read_file(log_path).find("log: Kafka") != std::string::npos; }, 60s);
}

/// The incompatible catalog's process exited with 2 and said why, before it opened the log.
void expect_refused_at_start(pid_t pid, const std::string& log_path) {
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string log = read_file(log_path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << log;
  EXPECT_NE(log.find("catalog cardata v3 is not compatible with the CarTelemetry schema already registered "
                     "under fleet.telemetry-value"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("field coolant_temp"), std::string::npos) << log;
  EXPECT_EQ(log.find("log: Kafka"), std::string::npos) << "refused after opening the log:\n" << log;
}

/// The new signals where a v2 process wrote the record, absent where a v1 process did (every message of
/// firmware 1, sent before the v2 process started, and some of firmware 2).
void expect_signals_by_writer(const SeenMap& seen, const catalog::Catalog& v2, int32_t v1_id, int32_t v2_id) {
  std::map<int32_t, int> per_schema;
  const std::size_t odo = v2.index_of("odometer"), cabin = v2.index_of("cabin_temp");
  for (const auto& [key, s] : seen) {
    ++per_schema[s.schema_id];
    ASSERT_EQ(s.as_v2.values.size(), v2.size());
    EXPECT_EQ(s.as_v2.values[core::kSpeed], 10 + std::stoi(key.first.substr(4)) - 1000);
    if (s.schema_id == v2_id && upgraded(key.first, key.second)) {
      EXPECT_EQ(s.as_v2.values[odo], odometer(key.second)) << key.first << "/" << key.second;
      EXPECT_EQ(s.as_v2.values[cabin], 21);
    } else if (s.schema_id == v2_id) {  // a car still on firmware 1, through the v2 process: no v2 signals
      EXPECT_TRUE(core::absent(s.as_v2.values[odo]) && core::absent(s.as_v2.values[cabin]));
    } else {
      EXPECT_EQ(s.schema_id, v1_id);
      EXPECT_TRUE(core::absent(s.as_v2.values[odo]) && core::absent(s.as_v2.values[cabin]));
    }
    if (key.second <= kOldRounds) {
      EXPECT_EQ(s.schema_id, v1_id);
    }
  }
  EXPECT_GT(per_schema[v1_id], kCars * kOldRounds);
  EXPECT_GT(per_schema[v2_id], 0);
}

/// Every record of the DLQ (read to its end by a new group).
std::vector<log::Record> dead_letters(log::Log& log) {
  auto dlq = log.consumer("evolution-test-dlq");
  dlq->subscribe({topics::kTelemetryDlq});
  std::vector<log::Record> out;
  EXPECT_TRUE(eventually(
      [&] {
        auto batch = dlq->poll(100, 500ms);
        out.insert(out.end(), batch.begin(), batch.end());
        return !dlq->assignment().empty() && batch.empty() && dlq->lag() == 0;
      },
      60s));
  dlq->close();
  return out;
}

}  // namespace

TEST(Evolution, TwoCatalogVersionsAtOnceOnKafkaNothingRejectedNothingLost) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("evolution");
  const auto registry = start_registry(kBin, dir);
  auto role = [&](const std::string& name, const std::string& log, const std::vector<std::string>& extra) {
    return spawn(kBin, role_args(name, kafka.address(), registry.url, extra), dir.file(log));
  };
  const auto v2 = std::make_shared<const catalog::Catalog>(catalog::load_file(kV2));
  auto client = std::make_shared<registry::SchemaRegistryClient>(registry.url);

  // Old process tier (v1), a sink already on v2 and a twin still on v1.
  const pid_t process_v1 = role("process", "process-v1.log", {"--catalog", kV1});
  const pid_t sink = role("sink", "sink.log", {"--catalog", kV2, "--data-dir", dir.file("store")});
  const pid_t twin = role("twin", "twin.log", {});
  ASSERT_TRUE(started(dir.file("process-v1.log"))) << read_file(dir.file("process-v1.log"));
  // An incompatible catalog is refused at start, naming the field, before it writes anything.
  expect_refused_at_start(role("process", "process-bad.log", {"--catalog", kIncompatible}),
                          dir.file("process-bad.log"));

  log::KafkaLog klog({{"bootstrap.servers", kafka.address()}});
  auto producer = klog.producer();
  int64_t sent = 0;
  const auto send_round = [&](int64_t seq) {
    for (int c = 0; c < kCars; ++c) {
      log::OutRecord r;
      r.topic = topics::kTelemetryRaw;
      r.key = car_id(c);
      r.value = raw_json(c, seq, firmware_of(c, seq));
      producer->send(std::move(r));
      ++sent;
    }
    ASSERT_EQ(producer->flush(30s), 0);
  };
  TelemetryWatcher watcher(klog, client, v2);
  for (int64_t seq = 1; seq <= kOldRounds; ++seq) send_round(seq);
  // The first rounds are through the v1 process alone before v2 joins, so both writer versions are known to
  // have written.
  ASSERT_TRUE(watcher.read_until(sent, 120s)) << read_file(dir.file("process-v1.log"));
  std::this_thread::sleep_for(2s);

  // The v2 process tier joins the same group: both versions write fleet.telemetry at once.
  const pid_t process_v2 = role("process", "process-v2.log", {"--catalog", kV2});
  ASSERT_TRUE(started(dir.file("process-v2.log"))) << read_file(dir.file("process-v2.log"));
  const std::string subject = registry::subject_for_topic(topics::kTelemetry);
  const int32_t v1_id = client->register_schema(subject, codec::TelemetryAvro(catalog::builtin()).schema());
  const int32_t v2_id = client->register_schema(subject, codec::TelemetryAvro(v2).schema());
  ASSERT_NE(v1_id, v2_id);

  // Half the cars now run firmware 2 and send the new signals, the others do not. Rounds go on until records
  // of this phase came through both process versions (the group hands the v2 process its partitions after a
  // rebalance).
  int64_t seq = kOldRounds;
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  while (!(watcher.both_versions_after(kOldRounds) && seq >= kOldRounds + 5) &&
         std::chrono::steady_clock::now() < deadline) {
    send_round(++seq);
    watcher.read_some();
  }
  ASSERT_TRUE(watcher.both_versions_after(kOldRounds))
      << read_file(dir.file("process-v1.log")) << read_file(dir.file("process-v2.log"));
  for (int i = 0; i < 3; ++i) send_round(++seq);  // and a little more with both running

  // Nothing lost: every (car, seq) on fleet.telemetry and in the v2 sink's store, exactly once.
  EXPECT_TRUE(watcher.read_until(sent, 120s)) << "read " << watcher.seen().size() << " of " << sent;
  const fs::path db = dir.file("store") + "/fleettwin.db";
  store::HistoryStats stats;
  EXPECT_TRUE(eventually(
      [&] {
        stats = store::SqliteStore(db.string()).history_stats();
        return stats.distinct >= sent && stats.twins >= kCars;
      },
      120s))
      << "stored " << stats.distinct << " of " << sent << "\n"
      << read_file(dir.file("sink.log"));
  expect_signals_by_writer(watcher.seen(), *v2, v1_id, v2_id);
  // Nothing rejected.
  const auto rejected = dead_letters(klog);
  EXPECT_TRUE(rejected.empty()) << rejected.size() << " rejected, the first: " << rejected.front().value;

  // The twin, still on v1, read the v2 records too: every car's twin is at its last seq.
  store::SqliteStore check(db.string());
  const auto all_at_last_seq = [&] {
    const auto twins = check.list_twins({.limit = 100});
    return twins.size() == kCars &&
           std::all_of(twins.begin(), twins.end(), [&](const auto& t) { return t.reported.seq == seq; });
  };
  EXPECT_TRUE(eventually(all_at_last_seq, 60s));

  // The old tier leaves first, as at the end of a rolling upgrade; then the rest.
  expect_clean_stops(dir, {{process_v1, "process-v1.log"}});
  expect_clean_stops(dir, {{process_v2, "process-v2.log"},
                           {twin, "twin.log"},
                           {sink, "sink.log"},
                           {registry.pid, "registry.log"}});
  stats = check.history_stats();
  EXPECT_EQ(stats.rows, sent);
  EXPECT_EQ(stats.distinct, sent);
  EXPECT_EQ(stats.cars, kCars);

  // The new signals are stored where present: the v2 sink's history holds the odometer of the firmware-2
  // cars' records that went through the v2 process, and of no other record.
  store::SqliteStore history(db.string(), {}, v2);
  const std::size_t odo = v2->index_of("odometer");
  int64_t with_odometer = 0;
  for (int c = 0; c < kCars; ++c) {
    for (const auto& row : history.history(car_id(c), 0, std::numeric_limits<int64_t>::max())) {
      const auto& t = row.t;
      if (core::absent(t.values[odo])) continue;
      ++with_odometer;
      EXPECT_TRUE(upgraded(t.car, t.seq)) << t.car << "/" << t.seq;
      EXPECT_EQ(t.values[odo], odometer(t.seq)) << t.car << "/" << t.seq;
    }
  }
  EXPECT_GT(with_odometer, 0);
}

// A VSS-named fleet on Kafka, half of it on firmware 2: `up --kafka --catalog vss.yaml` runs every stage on
// the broker, with the CarTelemetry schema generated from the VSS catalog; every (car, seq) is stored once,
// the version-2 signals where the cars sent them.
TEST(Evolution, VssNamedMixedFleetOnKafka) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("vss-kafka");
  const std::string vss = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml";
  const std::string summary = dir.file("summary.json");
  const auto r = run(kBin, {"up",
                            "--kafka",
                            kafka.address(),
                            "--registry-listen",
                            "127.0.0.1:0",
                            "--http",
                            "127.0.0.1:0",
                            "--fast",
                            "--cars",
                            "60",
                            "--interval",
                            "1s",
                            "--duration",
                            "1m",
                            "--catalog",
                            vss,
                            "--sim-catalog",
                            vss,
                            "--upgraded-share",
                            "0.5",
                            "--data-dir",
                            dir.file("data"),
                            "--summary-json",
                            summary});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string json = read_file(summary);
  for (const auto& [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"stored_telemetry", "3600"}, {"dlq", "0"}, {"lost", "0"}, {"duplicates", "0"}, {"twins", "60"}})
    EXPECT_NE(json.find("\"" + field + "\":" + value + ","), std::string::npos) << field << " in " << json;

  const auto catalog = std::make_shared<const catalog::Catalog>(catalog::load_file(vss));
  const std::size_t odometer = catalog->index_of("Vehicle.TraveledDistance");
  store::SqliteStore store(dir.file("data") + "/fleettwin.db", {}, catalog);
  int upgraded = 0;
  for (const auto& twin : store.list_twins({.limit = 100})) {
    const bool has = !core::absent(twin.reported.values[odometer]);
    upgraded += has ? 1 : 0;
    for (const auto& row : store.history(twin.id, 0, std::numeric_limits<int64_t>::max()))
      EXPECT_EQ(core::absent(row.t.values[odometer]), !has) << twin.id << "/" << row.t.seq;
  }
  EXPECT_EQ(upgraded, 30);
}
