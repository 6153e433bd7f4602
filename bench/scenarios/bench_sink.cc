// `fleettwin bench sink`: sink throughput from a pre-filled fleet.telemetry topic into a MongoDB-compatible
// server, against the official MongoDB Kafka sink connector (Kafka Connect standalone, deploy/kafka-connect)
// on the same records and the same server. Runs alternate (fleettwin, connector, fleettwin, ...) so that the
// noise of a shared machine falls on both; the medians are reported. See docs/benchmarks.md.
#include <mongoc/mongoc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "app/log_factory.h"
#include "app/pipeline.h"
#include "cli/commands.h"
#include "codec/json.h"
#include "core/telemetry.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "registry/client.h"
#include "registry/telemetry_reader.h"
#include "scenarios/bench_util.h"

namespace fleettwin::cli {

namespace bench = app::bench;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// The flag values of `fleettwin bench sink`.
struct BenchSinkFlags {
  std::string kafka, registry, mongo, json_path;
  std::string json_topic = "fleet.telemetry.json";
  int64_t runs = 3;
  int64_t seconds = 600;
  int64_t tasks = 1;
  bool no_connector = false;
};

/// One measured run of either side.
struct SinkRate {
  int64_t docs = 0;
  int64_t twin_upserts = 0;
  double seconds = 0;
  double docs_per_s() const { return seconds > 0 ? static_cast<double>(docs) / seconds : 0; }
  double twins_per_s() const { return seconds > 0 ? static_cast<double>(twin_upserts) / seconds : 0; }
};

/// `uri` with its database path replaced by `db` (options after '?' kept).
std::string with_database(const std::string& uri, const std::string& db) {
  const auto scheme = uri.find("://");
  if (scheme == std::string::npos) throw std::runtime_error("--mongo: not a mongodb:// URI: " + uri);
  const auto query = uri.find('?', scheme + 3);
  const auto host_end = std::min(uri.find('/', scheme + 3), query);
  const std::string options = query == std::string::npos ? "" : uri.substr(query);
  return uri.substr(0, host_end) + "/" + db + options;
}

std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string placeholder = "@" + key + "@";
    for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at))
      text.replace(at, placeholder.size(), value);
  }
  return text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t sum(const std::vector<int64_t>& v) {
  int64_t n = 0;
  for (auto x : v) n += x;
  return n;
}

/// Writes the Avro records of fleet.telemetry to `topic` as schemaless JSON (same keys, same partition
/// count), decoded by their registered schema: the connector's input, since the Confluent AvroConverter is
/// not on Maven Central. Skipped when `topic` already holds as many records.
void copy_as_json(log::KafkaLog& kafka, const std::string& registry_url, const std::string& topic,
                  int64_t total, int32_t partitions) {
  log::TopicConfig tc;
  tc.partitions = partitions;
  kafka.create_topic(topic, tc);  // no-op when it exists
  // A topic just created answers NOT_LEADER_FOR_PARTITION until its leaders are elected.
  int64_t already = -1;
  for (const auto until = Clock::now() + std::chrono::seconds(30); already < 0;) {
    try {
      already = sum(kafka.end_offsets(topic));
    } catch (const log::LogError&) {
      if (Clock::now() > until) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  if (already >= total) return;
  auto consumer = kafka.consumer("fleettwin.bench.sink.copy." + std::to_string(::getpid()));
  consumer->subscribe({core::topics::kTelemetry});
  auto producer = kafka.producer();
  registry::TelemetryReader reader(std::make_shared<registry::SchemaRegistryClient>(registry_url));
  core::Telemetry t;
  std::string error, json;
  int64_t copied = 0;
  auto last_record = Clock::now();
  while (copied < total) {
    auto batch = consumer->poll(5000, std::chrono::milliseconds(500));
    if (batch.empty() && Clock::now() - last_record > std::chrono::seconds(30))
      throw std::runtime_error("copy to " + topic + ": no record for 30 s after " + std::to_string(copied));
    if (!batch.empty()) last_record = Clock::now();
    for (const auto& r : batch) {
      ++copied;
      if (!reader.read(r.value, t, &error)) continue;  // the sink skips it too
      json.clear();
      codec::encode_json(t, json);
      producer->send(log::OutRecord{topic, r.key, json, {}, r.partition, r.timestamp_ms});
    }
    if (copied % 100000 < static_cast<int64_t>(batch.size()))
      spdlog::info("bench sink: copied {} / {} records to {}", copied, total, topic);
  }
  producer->flush(std::chrono::seconds(60));
  consumer->close();
}

/// fleettwin's sink alone on everything in the log, in a fresh group and a fresh database.
SinkRate run_fleettwin(const Config& base, const std::string& uri, int64_t max_wall_ms) {
  Config config = base;
  config.set(keys::group,
             "fleettwin.bench.sink." + std::to_string(::getpid()) + "." +
                 std::to_string(Clock::now().time_since_epoch().count()),
             "bench");
  config.set(keys::store_mongo_uri, uri, "bench");
  app::RunControl control;
  control.max_wall_ms = max_wall_ms;
  control.progress = true;
  control.stop_when_caught_up = true;
  const auto s = app::run_pipeline(config, control, app::Roles::only("sink"));
  SinkRate r;
  r.docs = s.stored_this_run;
  r.twin_upserts = s.twin_writes;
  // Wall time includes the one idle second that tells the run it caught up.
  r.seconds = s.elapsed_s > 1 ? s.elapsed_s - 1 : s.elapsed_s;
  return r;
}

/// Counts documents of one collection (the `count` command: cheap, also on FerretDB).
class DocCounter {
 public:
  DocCounter(const std::string& uri, const std::string& db, const std::string& collection) {
    mongoc_init();
    bson_error_t error;
    mongoc_uri_t* u = mongoc_uri_new_with_error(uri.c_str(), &error);
    if (!u) throw std::runtime_error(std::string("bad MongoDB URI: ") + error.message);
    _client = mongoc_client_new_from_uri(u);
    mongoc_uri_destroy(u);
    _collection = mongoc_client_get_collection(_client, db.c_str(), collection.c_str());
  }
  ~DocCounter() {
    mongoc_collection_destroy(_collection);
    mongoc_client_destroy(_client);
  }
  DocCounter(const DocCounter&) = delete;
  DocCounter& operator=(const DocCounter&) = delete;
  int64_t count() {
    bson_error_t error;
    const int64_t n =
        mongoc_collection_estimated_document_count(_collection, nullptr, nullptr, nullptr, &error);
    return n < 0 ? 0 : n;  // the collection does not exist before the first write
  }

 private:
  mongoc_client_t* _client = nullptr;
  mongoc_collection_t* _collection = nullptr;
};

/// The MongoDB Kafka sink connector in Kafka Connect standalone (a child process group) on the JSON copy, in
/// a fresh connector (so a fresh consumer group) and a fresh database. Timed from its first document in the
/// database to its last, so the JVM and worker start-up are not counted against it.
SinkRate run_connector(const BenchSinkFlags& flags, const std::string& uri, const std::string& db,
                       int64_t total, int run) {
  const fs::path deploy = fs::path(FLEETTWIN_SOURCE_DIR) / "deploy" / "kafka-connect";
  const fs::path script = fs::path(FLEETTWIN_SOURCE_DIR) / "scripts" / "services" / "kafka-connect";
  char tmpl[] = "/tmp/fleettwin-bench-connect.XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = tmpl;
  const std::map<std::string, std::string> values = {
      {"BROKERS", flags.kafka},
      {"DIR", dir.string()},
      {"TOPIC", flags.json_topic},
      {"MONGO_URI", uri},
      {"DATABASE", db},
      {"TASKS", std::to_string(flags.tasks)},
      {"NAME", "mongo-sink-bench-" + std::to_string(::getpid()) + "-" + std::to_string(run)}};
  std::ofstream(dir / "worker.properties") << fill(read_text(deploy / "worker.properties"), values);
  std::ofstream(dir / "mongo-sink.properties") << fill(read_text(deploy / "mongo-sink.properties"), values);
  const std::string log_path = (dir / "connect.log").string();

  DocCounter counter(uri, db, "telemetry");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    if (FILE* f = std::freopen(log_path.c_str(), "w", stdout)) ::dup2(::fileno(f), 2);
    ::execl(script.c_str(), script.c_str(), "standalone", (dir / "worker.properties").c_str(),
            (dir / "mongo-sink.properties").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  SinkRate r;
  int64_t first_count = -1, n = 0;
  Clock::time_point first, last;
  const auto deadline = Clock::now() + std::chrono::seconds(flags.seconds);
  std::string failure;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      failure = "Kafka Connect exited early (log: " + log_path + ")";
      break;
    }
    n = counter.count();
    if (n > 0 && first_count < 0) {
      first_count = n;
      first = Clock::now();
    }
    if (n >= total) {
      last = Clock::now();
      break;
    }
    if (Clock::now() > deadline) {
      failure = "connector stored " + std::to_string(n) + " of " + std::to_string(total) + " in " +
                std::to_string(flags.seconds) + " s (log: " + log_path + ")";
      break;
    }
  }
  ::kill(-pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!failure.empty()) throw std::runtime_error(failure);
  r.docs = total - first_count;
  r.seconds = std::chrono::duration<double>(last - first).count();
  fs::remove_all(dir);
  return r;
}

int run_bench_sink(const BenchSinkFlags& flags, Config& config) {
  if (flags.kafka.empty() || flags.registry.empty() || flags.mongo.empty())
    throw std::runtime_error("bench sink needs --kafka, --schema-registry and --mongo");
  config.set(keys::kafka_brokers, flags.kafka, "--kafka");
  config.set(keys::schema_registry, flags.registry, "--schema-registry");
  log::KafkaLog kafka(app::kafka_settings(config, flags.kafka));
  const auto ends = kafka.end_offsets(core::topics::kTelemetry);
  const int64_t total = sum(ends);
  if (total == 0)
    throw std::runtime_error(
        "fleet.telemetry is empty: pre-fill it first (fleettwin sim --kafka ... then fleettwin process, see "
        "docs/benchmarks.md)");
  spdlog::info("bench sink: {} records in fleet.telemetry ({} partitions)", total, ends.size());
  if (!flags.no_connector)
    copy_as_json(kafka, flags.registry, flags.json_topic, total, static_cast<int32_t>(ends.size()));

  std::vector<double> ft_docs, ft_twins, kc_docs;
  const std::string tag = std::to_string(::getpid());
  for (int run = 0; run < flags.runs; ++run) {
    const std::string ft_db = "bench_sink_ft_" + tag + "_" + std::to_string(run);
    const auto ft = run_fleettwin(config, with_database(flags.mongo, ft_db), flags.seconds * 1000);
    std::printf(
        "run %d fleettwin: %lld docs, %lld twin upserts in %.2f s: %.0f docs/s, %.0f twin upserts/s\n",
        run + 1, static_cast<long long>(ft.docs), static_cast<long long>(ft.twin_upserts), ft.seconds,
        ft.docs_per_s(), ft.twins_per_s());
    std::fflush(stdout);
    ft_docs.push_back(ft.docs_per_s());
    ft_twins.push_back(ft.twins_per_s());
    if (flags.no_connector) continue;
    const std::string kc_db = "bench_sink_kc_" + tag + "_" + std::to_string(run);
    const auto kc = run_connector(flags, with_database(flags.mongo, kc_db), kc_db, total, run);
    std::printf("run %d connector: %lld docs in %.2f s: %.0f docs/s\n", run + 1,
                static_cast<long long>(kc.docs), kc.seconds, kc.docs_per_s());
    std::fflush(stdout);
    kc_docs.push_back(kc.docs_per_s());
  }
  const double ft = bench::median(ft_docs), tw = bench::median(ft_twins), kc = bench::median(kc_docs);
  std::printf("median of %lld runs: fleettwin %.0f docs/s, %.0f twin upserts/s",
              static_cast<long long>(flags.runs), ft, tw);
  if (!flags.no_connector) std::printf("; connector %.0f docs/s; ratio %.2fx", kc, kc > 0 ? ft / kc : 0.0);
  std::printf("\n");
  if (!flags.json_path.empty()) {
    std::ofstream out(flags.json_path);
    out << "{\"records\": " << total << ", \"runs\": " << flags.runs << ", \"fleettwin_docs_per_s\": " << ft
        << ", \"fleettwin_twin_upserts_per_s\": " << tw << ", \"connector_docs_per_s\": " << kc
        << ", \"ratio\": " << (kc > 0 ? ft / kc : 0.0) << "}\n";
  }
  return 0;
}

}  // namespace

void add_bench_sink_commands(CommandLine& cl) {
  auto flags = std::make_shared<BenchSinkFlags>();
  auto* bench = cl.find({"bench"});
  auto* cmd = bench->add_subcommand(
      "sink",
      "Sink docs/s and twin upserts/s from fleet.telemetry into MongoDB, vs the MongoDB Kafka connector");
  cmd->add_option("--kafka", flags->kafka, "Kafka bootstrap servers holding a pre-filled fleet.telemetry")
      ->required();
  cmd->add_option("--schema-registry", flags->registry, "URL of the registry the records' schemas are in")
      ->required();
  cmd->add_option("--mongo", flags->mongo, "MongoDB/FerretDB URI (each run writes a fresh database)")
      ->required();
  cmd->add_option("--runs", flags->runs, "Runs of each side (medians reported)")->check(CLI::Range(1, 50));
  cmd->add_option("--seconds", flags->seconds, "Wall time limit of one run")->check(CLI::Range(1, 7200));
  cmd->add_option("--tasks", flags->tasks, "Connector tasks.max (default 1, as fleettwin's one sink)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--json-topic", flags->json_topic, "Topic of the JSON copy the connector reads");
  cmd->add_flag("--no-connector", flags->no_connector, "Measure fleettwin only");
  cmd->add_option("--json", flags->json_path, "Write the medians as JSON");
  cl.add(cmd, [flags](Config& config, std::atomic<int>&) { return run_bench_sink(*flags, config); });
}

}  // namespace fleettwin::cli
