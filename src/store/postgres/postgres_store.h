#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "store/postgres/pg_conn.h"
#include "store/twin_store.h"

namespace fleettwin::store {

/// How write() sends a batch's telemetry rows. bench/store_postgres_bench.cc (batches of 5,000 rows over
/// 2,000 cars, fsync on, the shared 2-core dev VM under a load average of 8 to 13 from other builds):
/// COPY 28-42 k rows/s, multi-row INSERT 12-17 k rows/s (three runs each). COPY is the default.
enum class PgTelemetryPath : uint8_t {
  kCopy,      ///< COPY into a temporary staging table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING
  kMultiRow,  ///< multi-row INSERT ... VALUES (...), (...) ... ON CONFLICT DO NOTHING, up to 1,000 rows each
};

/// Tuning of a PostgresStore.
struct PostgresOptions {
  PgTelemetryPath telemetry_path = PgTelemetryPath::kCopy;
};

/// The distributed-mode TwinStore on PostgreSQL (libpq): tables twins, telemetry (partitioned by day of
/// device time), alerts and commands in the database the URI names (schema and its reasons in
/// pg_schema.cc; docs/architecture.md "Stores and the signal catalog"). Same semantics as SqliteStore and
/// MongoStore (the contract suite runs all three): twins guarded by (reported.seq, version) in one
/// INSERT ... ON CONFLICT ... DO UPDATE ... WHERE, history inserted once per (car, ts, seq), alerts and
/// commands upserted by id. Each write(batch) is one transaction. Signals follow `catalog` (null: the
/// built-in one): one float8 telemetry column per signal, added on open.
///
/// Threads: one instance per thread, like every TwinStore (it owns one connection). Any number of instances
/// in any number of processes may share a database; rows are locked in id order, so concurrent batches do
/// not deadlock. After the connection is lost, the next call reconnects (the failed call throws a PgError
/// that transient_failure() accepts, so the sink retries it).
class PostgresStore final : public TwinStore {
 public:
  /// Connects to `uri` (postgresql://user@host:port/database) and brings the schema up to `catalog`.
  /// Throws PgError when the server cannot be reached or the schema cannot be used.
  explicit PostgresStore(const std::string& uri, PostgresOptions options = {},
                         std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin());
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  /// True for a URI this store takes: postgresql://... or postgres://...
  static bool is_uri(std::string_view uri);
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
  std::optional<core::Command> get_command(const std::string& id) override;
  std::vector<core::Command> commands(const std::string& car = "", int64_t limit = 1000) override;
  bool ack_alert(const std::string& id) override;
  std::optional<core::Alert> get_alert(const std::string& id) override;
  bool set_alert_feedback(const std::string& id, const std::string& label, const std::string& note,
                          int64_t ts) override;
  core::FeedbackCounts feedback_counts(const std::string& model_version) override;
  /// A PgError from a lost connection or a server that is shutting down, starting or overloaded.
  bool transient_failure(const std::exception& error) const override;

  /// Drops the day partitions entirely older than cutoff_ms (pg_schema.cc); `removed` counts partitions.
  RetentionResult enforce_retention(int64_t cutoff_ms) override;
  /// Deletes windows starting before cutoff_ms, at most 5,000 per statement (postgres_aggregates.cc).
  RetentionResult enforce_aggregates_retention(int64_t cutoff_ms) override;
  void upsert_aggregates(std::span<const AggregateRow> rows) override;
  /// Const for its callers; it uses (and may reconnect) the store's one connection like every other read.
  std::vector<AggregateRow> aggregates(const AggregateQuery& q) const override;
  /// The telemetry partitions (one per UTC day) that exist, oldest first: what retention drops.
  std::vector<std::string> telemetry_partitions();

 private:
  /// Runs `call` once more when it failed because the connection was lost: an idle connection learns of a
  /// server restart only when it is next used, and that first call then fails. The second try runs on a new
  /// connection (conn()); if the server is still away, it fails as the first did. Every call is a read or an
  /// idempotent write, so running one twice is safe.
  template <typename F>
  auto reconnecting(F&& call) -> decltype(call()) {
    try {
      return call();
    } catch (const PgError& e) {
      if (!e.connection_lost()) throw;
    }
    return call();
  }
  /// Reconnects a lost connection and prepares what a connection needs (statements, staging table).
  PgConnection& conn();
  void on_connect();
  WriteResult write_once(const WriteBatch& batch);
  void ensure_partitions(const std::vector<TelemetryRow>& rows);
  void write_telemetry(const std::vector<TelemetryRow>& rows, WriteResult& result);
  int64_t insert_multi_row(const std::vector<TelemetryRow>& rows);
  void write_twins(const std::vector<core::Twin>& twins, WriteResult& result);
  void write_alerts(const std::vector<core::Alert>& alerts);
  void write_commands(const std::vector<core::Command>& commands);

  std::string _uri;
  PostgresOptions _options;
  std::shared_ptr<const catalog::Catalog> _catalog;
  std::unique_ptr<PgConnection> _conn;
  std::vector<std::string> _columns;          ///< each catalog signal's telemetry column, quoted
  std::string _column_list;                   ///< car, ts, seq, lat, lon, the signal columns, score, flags
  std::vector<FilterField> _document_fields;  ///< the twin fields kept in twins.fields
  std::set<int64_t> _partitions;              ///< days whose partition this instance has seen created
  bool _prepared = false;                     ///< the current connection has the statements and staging table
  std::string _copy_buffer;                   // scratch: a batch's COPY data
};

}  // namespace fleettwin::store
