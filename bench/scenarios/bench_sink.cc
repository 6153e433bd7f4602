// `fleettwin bench sink`: sink throughput from a pre-filled fleet.telemetry topic into a store, against a
// Kafka connector on the same records and the same server: with --mongo, the official MongoDB Kafka sink
// connector (this file); with --postgres, Debezium's JDBC sink connector (bench_sink_postgres.cc). Both in
// Kafka Connect standalone (deploy/kafka-connect). Runs alternate (fleettwin, connector, fleettwin, ...) so
// that the noise of a shared machine falls on both; the medians are reported. See docs/benchmarks.md.
#include <mongoc/mongoc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/log_factory.h"
#include "cli/commands.h"
#include "codec/json.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "scenarios/sink_bench.h"

namespace fleettwin::cli {

namespace sink_bench {

namespace {

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

/// The MongoDB Kafka sink connector on the JSON copy, in a fresh connector (so a fresh consumer group) and a
/// fresh database.
SinkRate run_connector(const SinkFlags& flags, const std::string& uri, const std::string& db, int64_t total,
                       int run) {
  DocCounter counter(uri, db, "telemetry");
  ConnectProcess connect(
      flags.kafka, "mongo-sink.properties",
      {{"TOPIC", flags.json_topic},
       {"MONGO_URI", uri},
       {"DATABASE", db},
       {"TASKS", std::to_string(flags.tasks)},
       {"NAME", "mongo-sink-bench-" + std::to_string(::getpid()) + "-" + std::to_string(run)}});
  return time_connector(
      connect, [&] { return counter.count(); }, total, flags.seconds, std::chrono::milliseconds(100));
}

int run_bench_sink_mongo(SinkFlags flags, Config& config, log::KafkaLog& kafka, int64_t total,
                         int32_t partitions) {
  if (flags.json_topic.empty()) flags.json_topic = "fleet.telemetry.json";
  if (!flags.no_connector) {
    copy_topic(kafka, flags.registry, flags.json_topic, total, partitions,
               [](const core::Telemetry& t, std::string& out) { codec::encode_json(t, out); });
  }
  std::vector<SinkRate> ft_runs, kc_runs;
  const std::string tag = std::to_string(::getpid());
  for (int run = 0; run < flags.runs; ++run) {
    const std::string ft_db = "bench_sink_ft_" + tag + "_" + std::to_string(run);
    Config ft_config = config;
    ft_config.set(keys::store_mongo_uri, with_database(flags.mongo, ft_db), "bench");
    ft_runs.push_back(run_fleettwin(ft_config, flags.seconds * 1000));
    print_run(run, "fleettwin", ft_runs.back(), "docs");
    if (flags.no_connector) continue;
    const std::string kc_db = "bench_sink_kc_" + tag + "_" + std::to_string(run);
    kc_runs.push_back(run_connector(flags, with_database(flags.mongo, kc_db), kc_db, total, run));
    print_run(run, "connector", kc_runs.back(), "docs");
  }
  report(flags, total, ft_runs, kc_runs, "docs");
  return 0;
}

}  // namespace

int run_bench_sink(const SinkFlags& flags, Config& config) {
  if (flags.mongo.empty() == flags.postgres.empty())
    throw std::runtime_error("bench sink needs one store: --mongo URI or --postgres URI");
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
  const auto partitions = static_cast<int32_t>(ends.size());
  if (!flags.postgres.empty()) return run_bench_sink_postgres(flags, config, kafka, total, partitions);
  return run_bench_sink_mongo(flags, config, kafka, total, partitions);
}

}  // namespace sink_bench

void add_bench_sink_commands(CommandLine& cl) {
  auto flags = std::make_shared<sink_bench::SinkFlags>();
  auto* bench = cl.find({"bench"});
  auto* cmd = bench->add_subcommand(
      "sink",
      "Sink rows/s, rows per CPU-second and twin upserts/s from fleet.telemetry into MongoDB (vs the MongoDB "
      "Kafka connector) or PostgreSQL (vs Debezium's JDBC sink connector)");
  cmd->add_option("--kafka", flags->kafka, "Kafka bootstrap servers holding a pre-filled fleet.telemetry")
      ->required();
  cmd->add_option("--schema-registry", flags->registry, "URL of the registry the records' schemas are in")
      ->required();
  cmd->add_option("--mongo", flags->mongo, "MongoDB/FerretDB URI (each run writes a fresh database)");
  cmd->add_option(
      "--postgres", flags->postgres,
      "PostgreSQL URI of a database the bench may create databases from (each run writes a fresh one)");
  cmd->add_option("--runs", flags->runs, "Runs of each side (medians reported)")->check(CLI::Range(1, 50));
  cmd->add_option("--seconds", flags->seconds, "Wall time limit of one run")->check(CLI::Range(1, 7200));
  cmd->add_option("--tasks", flags->tasks, "Connector tasks.max (default 1, as fleettwin's one sink)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--json-topic", flags->json_topic,
                  "Topic of the JSON copy the connector reads (default fleet.telemetry.json, with --postgres "
                  "fleet.telemetry.json-schema)");
  cmd->add_flag("--no-connector", flags->no_connector, "Measure fleettwin only");
  cmd->add_option("--json", flags->json_path, "Write the medians as JSON");
  cl.add(cmd,
         [flags](Config& config, std::atomic<int>&) { return sink_bench::run_bench_sink(*flags, config); });
}

}  // namespace fleettwin::cli
