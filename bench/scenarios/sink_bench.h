#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "core/telemetry.h"
#include "log/kafka/kafka_log.h"

// The parts of `fleettwin bench sink` that do not depend on the store: the flags, the copy of fleet.telemetry
// the Kafka connectors read, fleettwin's sink run, a Kafka Connect standalone run, CPU time from /proc, and
// the report. bench_sink.cc (MongoDB vs the MongoDB connector) and bench_sink_postgres.cc (PostgreSQL vs
// Debezium's JDBC sink) hold what differs. Everything here runs on the bench's main thread.
namespace fleettwin::cli::sink_bench {

/// The flag values of `fleettwin bench sink`.
struct SinkFlags {
  std::string kafka, registry, mongo, postgres, json_path;
  std::string
      json_topic;  ///< empty: the store's default (fleet.telemetry.json / fleet.telemetry.json-schema)
  int64_t runs = 3;
  int64_t seconds = 600;
  int64_t tasks = 1;
  bool no_connector = false;
};

/// One measured run of either side.
struct SinkRate {
  int64_t rows = 0;
  int64_t twin_upserts = 0;
  double seconds = 0;
  double cpu_seconds = 0;         ///< of the sink process (fleettwin) / the Connect JVM, over `seconds`
  double server_cpu_seconds = 0;  ///< of the database server over `seconds`, when measured
  double rows_per_s() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
  double twins_per_s() const { return seconds > 0 ? static_cast<double>(twin_upserts) / seconds : 0; }
  double rows_per_cpu_s() const { return cpu_seconds > 0 ? static_cast<double>(rows) / cpu_seconds : 0; }
};

/// `text` with every `@KEY@` replaced by `values[KEY]`.
std::string fill(std::string text, const std::map<std::string, std::string>& values);
std::string read_text(const std::filesystem::path& path);
int64_t sum(const std::vector<int64_t>& v);
/// `uri` (scheme://[user@]host[:port][/db][?options]) with its database path replaced by `db`.
std::string with_database(const std::string& uri, const std::string& db);

/// User + system CPU seconds of process `pid` so far (/proc/PID/stat), plus those of its reaped children
/// when `with_children`; -1 if it is gone.
double proc_cpu_seconds(pid_t pid, bool with_children = false);
/// The parent of process `pid`, or -1 if it is gone.
pid_t parent_pid(pid_t pid);
/// CPU seconds of process `parent` and all its live children (a server and its backends, e.g. PostgreSQL's
/// postmaster: backends that exited are counted through the parent's reaped-children time).
double tree_cpu_seconds(pid_t parent);

/// Writes `encode(t)` of every Avro record of fleet.telemetry (decoded by its registered schema) to `topic`,
/// same keys, same partition count: the input of a Kafka connector, since the Confluent AvroConverter is not
/// on Maven Central. Skipped when `topic` already holds as many records, or without `encode`. `seen(t)` is
/// called for every record decoded, also when the copy is skipped (fleet.telemetry is then read only).
void copy_topic(log::KafkaLog& kafka, const std::string& registry_url, const std::string& topic,
                int64_t total, int32_t partitions,
                const std::function<void(const core::Telemetry&, std::string&)>& encode,
                const std::function<void(const core::Telemetry&)>& seen = {});

/// fleettwin's sink alone (`Roles::only("sink")`) on everything in the log, in a fresh consumer group, with
/// `config` naming the store. CPU: this process's, over the whole run (nothing else runs in it meanwhile);
/// `server_cpu` (optional) is read before and after.
SinkRate run_fleettwin(const Config& config, int64_t max_wall_ms,
                       const std::function<double()>& server_cpu = {});

/// Kafka Connect standalone (scripts/services/kafka-connect) in its own process group, with
/// deploy/kafka-connect/worker.properties and `connector_file` filled from `values` (BROKERS and DIR are
/// set here). Stopped (SIGTERM to the group) by the destructor.
class ConnectProcess {
 public:
  ConnectProcess(const std::string& brokers, const std::string& connector_file,
                 std::map<std::string, std::string> values);
  ~ConnectProcess();
  ConnectProcess(const ConnectProcess&) = delete;
  ConnectProcess& operator=(const ConnectProcess&) = delete;
  /// False once the process exited.
  bool running();
  /// The JVM's CPU seconds so far (the script execs it, so it is the child itself).
  double cpu_seconds() const { return proc_cpu_seconds(_pid); }
  const std::string& log_path() const { return _log; }
  /// Stops it and removes its directory (its log stays on failure: `keep_log`).
  void stop(bool keep_log = false);

 private:
  std::filesystem::path _dir;
  std::string _log;
  pid_t _pid = -1;
};

/// Polls `count` (rows the connector stored) every `poll` until it reaches `total`; timed from the first row
/// seen to the last, so the JVM and worker start-up are not counted; CPU of the JVM over the same window.
/// `server_cpu` (optional) is read at the same two moments. Throws on a connector exit or after `seconds`.
SinkRate time_connector(ConnectProcess& connect, const std::function<int64_t()>& count, int64_t total,
                        int64_t seconds, std::chrono::milliseconds poll,
                        const std::function<double()>& server_cpu = {});

/// The PostgreSQL side of `bench sink` (bench_sink_postgres.cc), on `total` records of fleet.telemetry.
int run_bench_sink_postgres(SinkFlags flags, Config& config, log::KafkaLog& kafka, int64_t total,
                            int32_t partitions);

/// The medians of each side over the runs, printed and written as JSON (`flags.json_path`), with `extra`
/// JSON members (`"key": value, ...`) appended.
void report(const SinkFlags& flags, int64_t total, const std::vector<SinkRate>& ft,
            const std::vector<SinkRate>& kc, const std::string& unit, const std::string& extra = "");
/// One run's line: "run N fleettwin: ..." / "run N connector: ...".
void print_run(int run, const char* side, const SinkRate& r, const std::string& unit);

}  // namespace fleettwin::cli::sink_bench
