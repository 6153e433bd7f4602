#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/alert.h"
#include "core/telemetry.h"
#include "core/twin.h"

namespace fleettwin::store {

/// One telemetry row of the history, with the anomaly score when known.
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

/// Filter for listing twins (the full filter language comes with the MongoDB issue).
struct TwinQuery {
  std::optional<core::HealthStatus> status;
  std::optional<bool> online;
  std::string after_id;  ///< paging cursor: list ids greater than this
  int64_t limit = 100;
};

/// Counts used by `up`'s exactness check (lost / duplicates).
struct HistoryStats {
  int64_t rows = 0;      ///< telemetry rows stored
  int64_t distinct = 0;  ///< distinct (car, seq) pairs among them
  int64_t cars = 0;      ///< distinct cars among them
  int64_t twins = 0;     ///< twins stored
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
};

}  // namespace fleettwin::store
