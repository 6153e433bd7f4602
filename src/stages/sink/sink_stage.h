#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/histogram.h"
#include "core/metrics.h"
#include "registry/telemetry_reader.h"
#include "stages/dead_letters.h"
#include "stages/stage.h"
#include "store/twin_store.h"

namespace fleettwin::stages {

/// The sink stage: writes telemetry history and twins from the log into the store, one atomic, idempotent
/// store write per batch (twin updates coalesced per car), so the runner commits the input only once the
/// store has it. Records the end-to-end latency of every stored message. A write that fails because the
/// store is unreachable (TwinStore::transient_failure) is retried with capped backoff until it succeeds or
/// the runner stops; any other failure throws. A record it cannot use goes to the DLQ of its topic (through
/// the runner's producer, flushed before the commit). Runs on its runner's thread; interrupt() from any
/// thread.
class SinkStage final : public Stage {
 public:
  /// Waits between retries of a store write during an outage: doubling from `first` up to `max`.
  struct RetryOptions {
    std::chrono::milliseconds first{200};
    std::chrono::milliseconds max{5000};
  };
  /// History retention (store.history_retention, store.retention_interval): after a batch, at most every
  /// `interval_ms` of `clock` (the run's clock: simulated with --fast), or after the next batch while the
  /// store reports more to remove, the sink calls TwinStore::enforce_retention(min(now, newest ts it has
  /// stored) - history_ms), and TwinStore::enforce_aggregates_retention with the same base - aggregates_ms
  /// (store.aggregates_retention).
  struct Retention {
    int64_t history_ms = 0;     ///< 0: keep everything
    int64_t aggregates_ms = 0;  ///< 0: keep every window aggregate
    int64_t interval_ms = 60000;
    const core::Clock* clock = nullptr;  ///< null: the wall clock
  };
  SinkStage(std::unique_ptr<store::TwinStore> store, core::Metrics& metrics, core::Histogram& latency,
            registry::TelemetryReader reader = registry::TelemetryReader());
  SinkStage(std::unique_ptr<store::TwinStore> store, core::Metrics& metrics, core::Histogram& latency,
            registry::TelemetryReader reader, RetryOptions retry);
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void interrupt() override;
  void set_retention(const Retention& retention) { _retention = retention; }
  /// The event time before which the last enforce_retention call removed the history (INT64_MIN: none yet).
  /// The runner's thread, or any thread once the runner stopped (`up`'s exactness check).
  int64_t retention_cutoff() const { return _retention_cutoff; }
  /// History rows retention removed since this stage started; -1 once it dropped a PostgreSQL day partition,
  /// whose rows it does not count. Same threads as retention_cutoff().
  int64_t retention_rows_removed() const { return _retention_rows_removed; }

 private:
  /// `call()` (a store access), repeated while it fails transiently; throws once interrupted.
  template <typename F>
  auto retrying(F&& call);
  // Each adds one record to the batch, or sends it to the DLQ of its topic with the reason.
  void add_telemetry(const log::Record& r, log::Producer& out);
  void add_twin(const log::Record& r, log::Producer& out);
  void add_alert(const log::Record& r, log::Producer& out);
  void add_command(const log::Record& r, log::Producer& out);
  void add_answer(const log::Record& r, log::Producer& out);
  void add_aggregate(const log::Record& r, log::Producer& out);
  /// Whether `car` may have one more answer stored before its command: at most core::kMaxEarlyAnswersPerCar
  /// in any core::kEarlyAnswerTtlMs of wall time (`now`), so a car inventing ids cannot fill the store.
  bool room_for_early_answer(const std::string& car, int64_t now);
  /// Runs the store's retention when it is due (see Retention); a failure is logged, not thrown: ingestion
  /// goes on and the next interval tries again.
  void enforce_retention();

  std::unique_ptr<store::TwinStore> _store;
  core::Histogram& _latency;
  registry::TelemetryReader _reader;
  store::WriteBatch _batch;                                             // per-batch scratch, reused
  std::vector<store::AggregateRow> _aggregates;                         // window results, per batch
  std::unordered_map<std::string, std::size_t> _twin_index;             // car -> position in _batch.twins
  std::unordered_map<std::string, std::size_t> _command_index;          // id -> position in _batch.commands
  std::unordered_map<std::string, std::deque<int64_t>> _early_answers;  // car -> when it stored early ones
  DeadLetters _dead_letters;
  std::vector<int64_t> _ingest_times;
  core::Counter& _stored;
  core::Counter& _duplicates;
  core::Counter& _twins_applied;
  core::Counter& _twins_stale;
  core::Counter& _store_retries;
  core::Counter& _aggregates_stored;
  RetryOptions _retry;
  std::mutex _wake_mu;  // with _wake: interrupt() ends a backoff wait at once
  std::condition_variable _wake;
  std::atomic<bool> _interrupted{false};
  Retention _retention;
  int64_t _retention_last_ms = INT64_MIN;
  bool _retention_more = false;
  int64_t _retention_cutoff = INT64_MIN;
  int64_t _retention_rows_removed = 0;
  int64_t _newest_ts = INT64_MIN;  // newest telemetry event time this sink has written
  core::Metrics& _metrics;
  /// The retention metrics of one kind of data ("history" or "aggregates"), labelled by the store, registered
  /// at its first run.
  struct RetentionMetrics {
    core::Counter* removed = nullptr;
    core::Gauge* oldest = nullptr;
    core::Gauge* last_run = nullptr;
  };
  /// Records what a run of `kind` did in its metrics; true when it left more to remove.
  bool record_retention(RetentionMetrics& m, std::string_view kind, const store::RetentionResult& r,
                        int64_t now_ms);
  RetentionMetrics _history_metrics;
  RetentionMetrics _aggregates_metrics;
};

}  // namespace fleettwin::stages
