#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregate/engine.h"
#include "catalog/catalog.h"
#include "config/config.h"
#include "core/metrics.h"
#include "core/topics.h"
#include "registry/telemetry_reader.h"
#include "stages/aggregate/status_matcher.h"
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
/// keyed by car and equally partitioned), as in the twin stage. Embedded (Links::save, the memory log
/// dies with the process) the same flush hands the changed cars' states to the data dir's state table, held
/// back until the store has every result written before the flush; at start the stage loads them and
/// replays the store's history after each car's saved event time (Links::replay), before its first record
/// (docs/architecture.md "State across restarts, embedded"). Group windows (fleet, site): with `changelog`
/// each copy counts its partitions' share, saved with their cars (key group_state_key()), and writes each
/// share's partial to fleet.aggregates.partials, which it also reads: the copy holding a group's partition
/// there merges the partials and writes the group's results (docs/architecture.md "Group windows");
/// embedded, the one engine merges its own. A definition grouped by `attribute: status` groups each event by
/// the health status its own score gave it: the stage then also reads fleet.scores and holds each event
/// until its score (or the proof it has none) comes (StatusMatcher), committing no offset of an event it
/// still holds. Runs on its runner's thread.
class AggregateStage final : public Stage {
 public:
  struct Options {
    std::vector<aggregate::Definition> definitions;
    aggregate::EngineOptions engine{};
    int64_t flush_interval_ms = 60000;
    int32_t result_schema_id = 0;  ///< the registry id of AggregateResult results are framed with
    bool changelog = false;        ///< write car state to fleet.aggregates.state (a durable log)
    /// With `changelog`: the partitions of fleet.aggregates.partials. Group windows are then kept per
    /// source partition, their partials written there and merged by the copy holding the group's
    /// partition. Without: this process counts every source and merges its own partials.
    int32_t partials_partitions = 8;
    std::string state_topic = core::topics::kAggregatesState;        ///< the changelog (per role)
    std::string partials_topic = core::topics::kAggregatesPartials;  ///< the partials (per role)
    /// With a definition grouped by status: how many events may wait for their score (per car, in all).
    StatusMatcher::Limits status_held{};
    /// Central with --sites: a record's site is the one its runner named (core::topics::kHeaderSite, from
    /// the `<site>.` topic it was read from). Otherwise every record is this site's (`local`), whatever
    /// headers its producer wrote.
    bool sites = false;
  };
  /// Feeds one stored telemetry event to the stage's engine (a replay of the store's history).
  using ReplayAdd = std::function<void(const core::Telemetry&)>;
  /// Per car of the store and the ts of its newest stored event (nullopt: not known), the ts from which
  /// its history is replayed.
  using ReplayFrom = std::function<int64_t(const std::string& car, std::optional<int64_t> newest_ts)>;
  struct Links {
    /// The latest saved state of the cars of the given partition numbers; null: nothing to load.
    std::function<std::vector<AggregateSnapshot>(const std::set<int32_t>&)> load;
    /// Embedded (`up`, no changelog): where the state of the cars whose windows changed goes at each flush
    /// (the data dir's state table), once the store holds every result written before it.
    std::function<void(const std::vector<AggregateSnapshot>&)> save;
    /// Embedded: taken after a flush of the outputs, a check that turns true once the store holds every
    /// result written to fleet.aggregates so far (the sink committed past them). Null: at once.
    std::function<std::function<bool()>()> results_stored;
    /// Embedded: after the load, the store's history of every car it holds, per car oldest first (ts,
    /// seq) from the ts `from` gives, fed to `add`, in pages (memory bounded).
    std::function<void(const ReplayFrom& from, const ReplayAdd& add)> replay;
    /// With `changelog`: the records of the compacted partials topic on the given partitions, read to its
    /// end, where a copy that gains them rebuilds the merges. Null: nothing to load.
    std::function<std::vector<log::Record>(const std::set<int32_t>&)> load_partials;
  };
  /// `base` for the default consumer group (empty, or "fleettwin.aggregate"), else "<base>.<group>" with
  /// any character a topic name cannot hold as '_': each aggregate role its own changelog and partials.
  static std::string role_topic(std::string_view base, std::string_view group);
  /// The changelog key of a source partition's group windows (".groups.<partition>": no car id has a dot).
  static std::string group_state_key(int32_t partition);
  /// The partition of a group_state_key(); -1 for any other key.
  static int32_t group_state_partition(std::string_view key);
  /// The attributes a definition may group by: `site`, the edge site a record came from (central with
  /// --sites; "local" without one), and `status`, the health status the event's own score gave it (ok,
  /// warning; unknown for an event without a score). Throws config::ConfigError naming any other.
  static void check_attributes(const std::vector<aggregate::Definition>& definitions);
  /// Whether some definition groups by `status`: the stage then reads fleet.scores too.
  static bool needs_scores(const std::vector<aggregate::Definition>& definitions);

  AggregateStage(Options options, core::Metrics& metrics,
                 registry::TelemetryReader reader = registry::TelemetryReader(), Links links = {});
  static const StageDescriptor& static_descriptor();
  /// static_descriptor(), with fleet.scores among the inputs when a definition groups by status.
  const StageDescriptor& descriptor() const override { return _descriptor; }
  void limit_commit(log::Offsets& next) const override;
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void tick(log::Producer& out) override;
  void flush_state(log::Producer& out) override;
  std::chrono::milliseconds commit_interval() const override {
    return std::chrono::milliseconds(_options.flush_interval_ms);
  }
  void on_assigned(const std::vector<log::TopicPartition>& partitions) override;
  void on_revoked(const std::vector<log::TopicPartition>& partitions) override;
  const aggregate::Engine& engine() const { return _engine; }
  /// The events waiting for their score; null when no definition groups by status.
  const StatusMatcher* status_matcher() const { return _matcher ? &*_matcher : nullptr; }
  /// Embedded: writes the flushed states whose results the store now holds (Links::save). The runner's
  /// thread calls it at each tick and flush.
  void save_flushed_state();
  /// Embedded, by the host once every runner has stopped and only when this stage's stopped without an
  /// error (its last flush wrote every result): the state of the cars changed since the last one taken,
  /// then save_flushed_state. A clean stop is a final flush.
  void final_flush();

 private:
  /// States taken at one flush, and the check that lets them be saved (null until the outputs the flush
  /// waited for are in the log: taken at the next tick or flush).
  struct Unsaved {
    std::vector<AggregateSnapshot> cars;
    std::function<bool()> stored;
  };
  void add(const log::Record& r, log::Producer& out);
  /// Counts one decoded event with its status (unknown when no definition groups by status).
  void count(const log::Record& r, const core::Telemetry& t, core::HealthStatus status, log::Producer& out);
  void score(const log::Record& r, log::Producer& out);
  void combine(const log::Record& r, log::Producer& out);
  void write_partials(log::Producer& out);
  void restore_partials(const std::set<int32_t>& gained);
  /// Whether `p`, read on `partition` of the partials topic, is that partition's to merge: false for a
  /// partial written when the topic had another partition count (its writer wrote it again to its new
  /// partition when it restarted with the new count: every restored source's partials are made again).
  bool partial_belongs_to(const aggregate::Partial& p, int32_t partition);
  void write_results(log::Producer& out);
  void restore(const std::set<int32_t>& gained);
  void replay_history();
  void take_flushed_state();

  Options _options;
  StageDescriptor _descriptor;
  Links _links;
  aggregate::Engine _engine;
  registry::TelemetryReader _reader;
  core::Telemetry _t;
  DeadLetters _dead_letters;
  std::optional<StatusMatcher> _matcher;  ///< with a definition grouped by status
  log::Producer* _out = nullptr;          ///< the producer of the batch in process (for the matcher's events)
  std::vector<bool> _is_status;           ///< per engine attribute: it is `status` (else `site`)
  std::vector<std::string_view> _attribute_values;  ///< scratch: per engine attribute, the event's value
  std::unordered_map<std::string, int32_t> _partition_of;  ///< car -> partition number of its records
  std::set<std::string> _changed;                          ///< cars whose state is not yet on the changelog
  std::set<int32_t> _changed_sources;  ///< source partitions whose group windows are not yet saved
  bool _groups = false;                ///< some definition is per fleet or per attribute
  std::map<int32_t, int> _held;        ///< input partitions held, per partition number
  std::set<int32_t> _held_partials;    ///< partitions of the partials topic held
  std::unordered_map<std::string, std::vector<std::string>> _columns;  ///< per aggregate: its columns
  std::string _value;                                                  ///< scratch for encoding
  std::deque<Unsaved> _unsaved;  ///< embedded: flushed states not yet in the state table, oldest first
  std::chrono::steady_clock::time_point _next_state{};  ///< embedded: when a flush next takes states
  int64_t _restored_here = 0;                           ///< cars whose saved state this stage restored
  int64_t _partials_elsewhere = 0;  ///< partials read on a partition their group no longer maps to
  core::Counter& _results;
  core::Counter& _duplicates;
  core::Counter& _restored;
  core::Counter& _restore_refused;
  core::Counter& _replayed;
  core::Counter& _state_saved;
  core::Gauge& _memory;
  core::Counter& _status_evicted;
  int64_t _status_evicted_seen = 0;
};

}  // namespace fleettwin::stages
