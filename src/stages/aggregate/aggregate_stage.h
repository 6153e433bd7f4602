#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregate/engine.h"
#include "catalog/catalog.h"
#include "config/config.h"
#include "core/metrics.h"
#include "registry/telemetry_reader.h"
#include "stages/dead_letters.h"
#include "stages/stage.h"

namespace fleettwin::stages {

/// The aggregate definitions in use: the file `aggregate.definitions` names (or the YAML itself, when the
/// value has more than one line), or the shipped ones, read
/// against `catalog`. The aggregate stage and the API (which names a result's columns) read them the same
/// way. ConfigError for an unreadable file or a bad definition.
std::vector<aggregate::Definition> aggregate_definitions(const config::Config& config,
                                                         const catalog::Catalog& catalog);

/// A car's saved window state as the aggregate stage's changelog holds it (Engine::save_car bytes).
struct AggregateSnapshot {
  std::string car;
  std::string state;
};

/// The aggregate stage: runs the aggregation engine (src/aggregate/) over fleet.telemetry by event time and
/// writes each window result to fleet.aggregates as Avro, keyed "<aggregate>|<group>|<window_start>"; an
/// event later than a definition's allowed lateness goes to the telemetry DLQ with reason `too_late`. Results
/// go through the runner's producer, so the input is committed only once they are acknowledged. State: with
/// `changelog` (a durable log) the state of each car whose windows changed is written to the compacted
/// fleet.aggregates.state at most once per flush interval, right before the commit, so the changelog always
/// matches the committed input; a copy that gains a partition loads its cars from there (Links::load) and
/// continues exactly where the last owner committed. A car belongs to a partition number (every topic is
/// keyed by car and equally partitioned), as in the twin stage. Runs on its runner's thread.
class AggregateStage final : public Stage {
 public:
  struct Options {
    std::vector<aggregate::Definition> definitions;
    aggregate::EngineOptions engine{};
    int64_t flush_interval_ms = 60000;
    int32_t result_schema_id = 0;  ///< the registry id of AggregateResult results are framed with
    bool changelog = false;        ///< write car state to fleet.aggregates.state (a durable log)
  };
  struct Links {
    /// The latest saved state of the cars of the given partition numbers; null: nothing to load.
    std::function<std::vector<AggregateSnapshot>(const std::set<int32_t>&)> load;
  };
  /// The attributes a definition may group by: `site`, the edge site a record came from (central with
  /// --sites; "local" without one). Throws config::ConfigError naming any other.
  static void check_attributes(const std::vector<aggregate::Definition>& definitions);

  AggregateStage(Options options, core::Metrics& metrics,
                 registry::TelemetryReader reader = registry::TelemetryReader(), Links links = {});
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void tick(log::Producer& out) override;
  void flush_state(log::Producer& out) override;
  std::chrono::milliseconds commit_interval() const override {
    return std::chrono::milliseconds(_options.flush_interval_ms);
  }
  void on_assigned(const std::vector<log::TopicPartition>& partitions) override;
  void on_revoked(const std::vector<log::TopicPartition>& partitions) override;
  const aggregate::Engine& engine() const { return _engine; }

 private:
  void add(const log::Record& r, log::Producer& out);
  void write_results(log::Producer& out);

  Options _options;
  Links _links;
  aggregate::Engine _engine;
  registry::TelemetryReader _reader;
  core::Telemetry _t;
  DeadLetters _dead_letters;
  std::unordered_map<std::string, int32_t> _partition_of;  ///< car -> partition number of its records
  std::set<std::string> _changed;                          ///< cars whose state is not yet on the changelog
  std::map<int32_t, int> _held;                            ///< input partitions held, per partition number
  std::unordered_map<std::string, std::vector<std::string>> _columns;  ///< per aggregate: its columns
  std::string _value;                                                  ///< scratch for encoding
  core::Counter& _results;
  core::Counter& _duplicates;
  core::Counter& _restored;
  core::Counter& _restore_refused;
  core::Gauge& _memory;
};

}  // namespace fleettwin::stages
