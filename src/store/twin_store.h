#pragma once

#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/alert.h"
#include "core/telemetry.h"
#include "core/twin.h"
#include "store/aggregate_rows.h"
#include "store/filter.h"

namespace fleettwin::store {

/// One telemetry row of the history, with the anomaly score when known. Stores read `t.values` sized and
/// ordered by their catalog (absent signals kAbsent) and keep `t.out_of_range`.
struct TelemetryRow {
  core::Telemetry t;
  std::optional<double> score;
  bool operator==(const TelemetryRow&) const = default;
};

/// Everything one sink batch writes. Applied atomically where the backend allows (SQLite: one
/// transaction), idempotently everywhere: replaying a batch changes nothing.
struct WriteBatch {
  std::vector<TelemetryRow> telemetry;  ///< inserted once per (car, seq); duplicates are ignored
  std::vector<core::Twin> twins;        ///< upserted, guarded by (reported.seq, version)
  std::vector<core::Alert> alerts;      ///< upserted by id
  std::vector<core::Command> commands;  ///< upserted by id
};

/// What a write did.
struct WriteResult {
  int64_t telemetry_inserted = 0;
  int64_t telemetry_duplicates = 0;
  int64_t twins_applied = 0;
  int64_t twins_stale = 0;  ///< twin updates refused because the store held newer state
};

/// Filter, order and page of a twin listing. Every member has a default (`{}`), so `{.limit = 10}` names only
/// what it sets.
struct TwinQuery {
  std::optional<core::HealthStatus> status{};
  std::optional<bool> online{};
  std::optional<Filter> filter{};  ///< parse_filter(text); ANDed with status/online
  /// A field path (filter_fields() of the store's catalog, a signal by any of its names), leading '-' =
  /// descending; empty = by id. Ties are ordered by id.
  std::string sort{};
  /// Paging cursor: empty for the first page, then twin_cursor(parse_sort(sort), last twin of the page).
  /// With the id sort that is simply the last id (list ids greater than this).
  std::string after_id{};
  int64_t limit = 100;
};

/// Analytics: every adapter gives the same results (the store contract suite checks them).
struct FleetSummary {
  int64_t cars = 0;
  std::map<std::string, int64_t> by_status;  ///< health status string ("ok", ...) -> cars; zero counts absent
  int64_t online = 0;
  int64_t messages_last_minute = 0;  ///< telemetry rows with now - 60 s <= ts < now (device time)
  bool operator==(const FleetSummary&) const = default;
};

/// One car of the top-N by anomaly score.
struct CarScore {
  std::string car;
  double score = 0;
  double threshold = 0;
  std::string status;
  bool operator==(const CarScore&) const = default;
};

/// One hour of one signal of one car. NaN values (stored as NULL/null) are not counted.
struct HourlyAggregate {
  int64_t hour_ms = 0;  ///< start of the hour, ms since the epoch (UTC)
  double min = 0;
  double avg = 0;
  double max = 0;
  int64_t count = 0;
  bool operator==(const HourlyAggregate&) const = default;
};

/// Alerts raised (raised == true, by their ts) per hour and kind.
struct AlertsPerHour {
  int64_t hour_ms = 0;
  std::string kind;
  int64_t count = 0;
  bool operator==(const AlertsPerHour&) const = default;
};

/// Counts used by `up`'s exactness check (lost / duplicates).
struct HistoryStats {
  int64_t rows = 0;      ///< telemetry rows stored
  int64_t distinct = 0;  ///< distinct (car, seq) pairs among them
  int64_t cars = 0;      ///< distinct cars among them
  int64_t twins = 0;     ///< twins stored
};

/// A car's oldest stored row (TwinStore::oldest_per_car).
struct OldestRow {
  std::string car;
  int64_t seq = 0;
  int64_t ts = 0;
};

/// What one TwinStore::enforce_retention call did.
struct RetentionResult {
  int64_t removed = 0;  ///< history rows deleted (SQLite, MongoDB), or day partitions dropped (PostgreSQL)
  /// Lower bound of the history still held, ms (device time): no stored row is older. INT64_MAX when the
  /// history is empty. SQLite and MongoDB give the oldest row's ts, PostgreSQL the start of its oldest day.
  int64_t oldest_ms = INT64_MAX;
  /// True when the call stopped at its bound with more to remove: call again soon (the sink does, after
  /// its next batch), not after a whole retention interval.
  bool more = false;
  std::string_view store;  ///< the adapter, "sqlite", "postgres" or "mongo": the label of the sink's metrics
};

/// Persistent store of twins, history and alerts. Adapters: sqlite/ (embedded), mongo/ (distributed).
/// An instance is used by one thread at a time; open one per thread.
class TwinStore {
 public:
  virtual ~TwinStore() = default;
  virtual WriteResult write(const WriteBatch& batch) = 0;
  virtual std::optional<core::Twin> get_twin(const std::string& car) = 0;
  virtual std::vector<core::Twin> list_twins(const TwinQuery& query) = 0;
  /// History of one car with from_ms <= ts < to_ms, oldest first, at most `limit` rows.
  virtual std::vector<TelemetryRow> history(const std::string& car, int64_t from_ms, int64_t to_ms,
                                            int64_t limit = 100000) = 0;
  virtual std::vector<core::Alert> alerts(const std::string& car = "", int64_t limit = 1000) = 0;
  virtual HistoryStats history_stats() = 0;
  /// Highest contiguous-from-1 seq stored per car is not needed here: max seq per car (for resume).
  virtual std::vector<std::pair<std::string, int64_t>> max_seq_per_car() = 0;
  /// Each car's stored row with the lowest seq, and its ts: where retention left each car's history, which
  /// `up`'s exactness check needs to tell rows retention removed from rows never stored. A full pass over
  /// the history; run once at the end of a run, never on the hot path.
  virtual std::vector<OldestRow> oldest_per_car() = 0;

  // Analytics.
  virtual FleetSummary fleet_summary(int64_t now_ms) = 0;
  /// The n twins with the highest health.score, ties by id ascending.
  virtual std::vector<CarScore> top_by_score(int64_t n) = 0;
  /// Hourly min/avg/max/count of `signal` (any name, field or alias of a signal of the store's catalog, or
  /// "score") of one car over from_ms <= ts < to_ms, oldest hour first; hours without values are absent.
  /// Throws std::invalid_argument for an unknown signal.
  virtual std::vector<HourlyAggregate> hourly(const std::string& car, std::string_view signal,
                                              int64_t from_ms, int64_t to_ms) = 0;
  /// Raised alerts per (hour, kind) over from_ms <= ts < to_ms, ordered by hour then kind.
  virtual std::vector<AlertsPerHour> alerts_per_hour(int64_t from_ms, int64_t to_ms) = 0;

  /// Removes history rows whose event time ts is older than `cutoff_ms` (ts < cutoff_ms), bounded work per
  /// call (see RetentionResult::more) so that ingestion on other connections never waits long; twins,
  /// alerts and commands are untouched. Idempotent. PostgreSQL removes whole day partitions only, so rows
  /// of the day holding cutoff_ms stay until that day is entirely older.
  virtual RetentionResult enforce_retention(int64_t cutoff_ms) = 0;
  /// Removes stored window aggregates whose window starts before `cutoff_ms` (window_start_ms < cutoff_ms;
  /// store.aggregates_retention), bounded work per call like enforce_retention (`removed` counts windows,
  /// `oldest_ms` is the oldest window start still held). The sink runs both. Idempotent.
  virtual RetentionResult enforce_aggregates_retention(int64_t cutoff_ms) = 0;

  // Window aggregates (the aggregate stage's results; src/store/aggregate_rows.h).
  /// Stores each row under its key (aggregate, group, window_start_ms): the highest revision per key wins,
  /// so a replay or an older revision arriving late changes nothing. One transaction where the backend
  /// allows.
  virtual void upsert_aggregates(std::span<const AggregateRow> rows) = 0;
  /// The stored windows `q` selects, ordered by group, window start; values as written (NaN = none).
  virtual std::vector<AggregateRow> aggregates(const AggregateQuery& q) const = 0;

  // Commands and alerts.
  virtual std::optional<core::Command> get_command(const std::string& id) = 0;
  /// Commands of one car (all cars when empty), newest (created) first, ties by id descending.
  virtual std::vector<core::Command> commands(const std::string& car = "", int64_t limit = 1000) = 0;
  /// Sets acknowledged on the alert; false when no alert has this id.
  virtual bool ack_alert(const std::string& id) = 0;
  virtual std::optional<core::Alert> get_alert(const std::string& id) = 0;
  /// Records an operator's label (core::kFeedbackConfirmed or kFeedbackFalse) and note on the alert,
  /// replacing an earlier one; false when no alert has this id. The sink's later upserts of the alert keep
  /// it.
  virtual bool set_alert_feedback(const std::string& id, const std::string& label, const std::string& note,
                                  int64_t ts) = 0;
  /// Labels of the alerts raised by model `model_version`.
  virtual core::FeedbackCounts feedback_counts(const std::string& model_version) = 0;

  /// True when `error`, thrown by this store, means the server could not be reached or did not answer
  /// (an outage), so the same call may succeed later. The sink then retries instead of stopping. Default
  /// false: an embedded store's failure is not expected to heal by waiting.
  virtual bool transient_failure(const std::exception& error) const { return false; }
};

}  // namespace fleettwin::store
