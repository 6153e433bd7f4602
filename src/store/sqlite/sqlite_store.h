#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "store/sqlite/car_seq_map.h"
#include "store/sqlite/sqlite_db.h"
#include "store/twin_store.h"

namespace fleettwin::store {

/// Tuning of a SqliteStore connection. The defaults are what bench/store_bench.cc measured best.
struct SqliteOptions {
  /// How long a writer waits for another connection's write lock before failing with SQLITE_BUSY.
  int64_t busy_timeout_ms = 10000;
  /// Page cache per connection, KiB (SQLite's default, 2 MiB, makes every batch re-read its pages).
  int64_t cache_size_kib = int64_t{64} * 1024;
  /// Applies only when the file is created. Large pages cut the per-page cost of WAL writes and B-tree
  /// splits on the telemetry insert path: 4 KiB 168 k rows/s, 16 KiB 235 k, 64 KiB 230-280 k (see the
  /// schema comment in sqlite_schema.cc), for a history query ~30% slower than at 16 KiB.
  int page_size = 65536;
  /// Telemetry rows per generation (see the schema comment): larger means fewer seeks per history query
  /// but slower inserts, because each batch then writes into a wider region of the table.
  int64_t telemetry_generation_rows = 20000;
};

/// The embedded-mode TwinStore: one SQLite file (`<data-dir>/fleettwin.db`) in WAL mode holding twins,
/// telemetry history, alerts and commands. Each write(batch) is one transaction, so a crash leaves all of a
/// batch or none of it.
///
/// Threads: one instance per thread, never shared (the connection has no mutex). Any number of instances
/// may open the same file: WAL lets readers in other connections run beside the one writer, and writers
/// queue on the database lock for up to busy_timeout_ms.
///
/// Signals follow `catalog` (null: the built-in one): one nullable telemetry column per signal, named by
/// its field, added on open when the file lacks it (a catalog that adds a signal needs no migration; rows
/// written before read it as absent). Columns of signals the catalog no longer has are kept and not read.
/// Every instance on one file should use the same catalog.
class SqliteStore final : public TwinStore {
 public:
  explicit SqliteStore(const std::string& path, SqliteOptions options = {},
                       std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin());
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// `<data_dir>/fleettwin.db`.
  static std::string path_in(const std::string& data_dir);
  const catalog::Catalog& catalog() const { return *_catalog; }

  WriteResult write(const WriteBatch& batch) override;
  std::optional<core::Twin> get_twin(const std::string& car) override;
  std::vector<core::Twin> list_twins(const TwinQuery& query) override;
  std::vector<TelemetryRow> history(const std::string& car, int64_t from_ms, int64_t to_ms,
                                    int64_t limit = 100000) override;
  std::vector<core::Alert> alerts(const std::string& car = "", int64_t limit = 1000) override;
  HistoryStats history_stats() override;
  std::vector<std::pair<std::string, int64_t>> max_seq_per_car() override;
  std::vector<OldestRow> oldest_per_car() override;

  FleetSummary fleet_summary(int64_t now_ms) override;
  std::vector<CarScore> top_by_score(int64_t n) override;
  std::vector<HourlyAggregate> hourly(const std::string& car, std::string_view signal, int64_t from_ms,
                                      int64_t to_ms) override;
  std::vector<AlertsPerHour> alerts_per_hour(int64_t from_ms, int64_t to_ms) override;
  /// Deletes by generation (telemetry_gens: each one's ts range), at most 5,000 rows per statement, each
  /// statement its own transaction (sqlite_retention.cc).
  RetentionResult enforce_retention(int64_t cutoff_ms) override;
  /// Window aggregates (sqlite_aggregates.cc): one transaction per upsert; retention deletes at most 5,000
  /// windows per statement, each its own transaction, like history's.
  RetentionResult enforce_aggregates_retention(int64_t cutoff_ms) override;
  void upsert_aggregates(std::span<const AggregateRow> rows) override;
  std::vector<AggregateRow> aggregates(const AggregateQuery& q) const override;
  std::optional<core::Command> get_command(const std::string& id) override;
  std::vector<core::Command> commands(const std::string& car = "", int64_t limit = 1000) override;
  bool ack_alert(const std::string& id) override;
  std::optional<core::Alert> get_alert(const std::string& id) override;
  bool set_alert_feedback(const std::string& id, const std::string& label, const std::string& note,
                          int64_t ts) override;
  core::FeedbackCounts feedback_counts(const std::string& model_version) override;

 private:
  struct Statements;

  void open(const SqliteOptions& options);
  std::vector<core::Twin> list_twins_filtered(const TwinQuery& query);
  void write_telemetry(const std::vector<TelemetryRow>& rows, WriteResult& result);
  void write_twins(const std::vector<core::Twin>& twins, WriteResult& result);
  void write_alerts(const std::vector<core::Alert>& alerts);
  void write_commands(const std::vector<core::Command>& commands);
  bool telemetry_exists(const core::Telemetry& t);
  int64_t closed_max_seq(const std::string& car);
  int64_t open_generation();

  /// Declared first: the connection's ft_twin_field function points at it until the connection closes.
  std::shared_ptr<const catalog::Catalog> _catalog;
  std::vector<std::string> _columns;  ///< each catalog signal's telemetry column, quoted (prepare_schema)
  std::string _path;
  int64_t _generation_rows;
  Db _db;
  std::unique_ptr<Statements> _st;
  /// Highest seq per car in the closed telemetry generations (telemetry_cars), for the cars this
  /// connection has met: lets a new message skip the duplicate lookup. Valid only while no other
  /// connection has committed: write() checks PRAGMA data_version and drops it otherwise, and a
  /// rolled-back write drops it too.
  CarSeqMap _max_seq;
  int64_t _data_version = -1;
  std::vector<uint32_t> _order;  // scratch: insert order of a telemetry batch
};

}  // namespace fleettwin::store
