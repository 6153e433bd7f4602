#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "core/metrics.h"
#include "store/twin_store.h"

// libmongoc's own type names, declared here so that users of the adapter never include its headers.
typedef struct _mongoc_client_pool_t
    mongoc_client_pool_t;  // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
typedef struct _mongoc_client_t
    mongoc_client_t;  // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)

namespace fleettwin::store {

/// What the connected server supports, probed once per pool (buildInfo, hello) and logged.
struct MongoCapabilities {
  std::string version;          ///< buildInfo.version (FerretDB reports the MongoDB version it emulates)
  bool ferretdb = false;        ///< buildInfo carries ferretdbFeatures
  bool time_series = false;     ///< native time-series collections (MongoDB >= 5.0)
  bool change_streams = false;  ///< needs a replica set or sharded cluster
  bool geo_index = false;       ///< 2dsphere indexes
  /// $dateTrunc, $min/$max/$avg in $group (MongoDB >= 5.0). FerretDB 1.24 has $group with $sum/$count only.
  bool full_pipelines = false;
  /// An update's filter check and write are one atomic step (MongoDB). Not in FerretDB 1.24: twins are then
  /// written under per-car lease locks (docs/operations.md, "FerretDB 1.x and the MongoDB adapter").
  bool atomic_updates = false;
};

/// Tuning of a MongoStore.
struct MongoOptions {
  /// Attempts of a bulk write that failed for a reason other than a duplicate key (server down, network,
  /// write concern) before write() throws; the wait doubles from retry_backoff_ms up to retry_backoff_max_ms.
  int max_attempts = 8;
  int64_t retry_backoff_ms = 100;
  int64_t retry_backoff_max_ms = 5000;
  /// Where retries and failures are counted (fleettwin_store_mongo_retries_total / _errors_total); optional.
  core::Metrics* metrics = nullptr;
};

/// One libmongoc client pool per URI, shared by every MongoStore of the process that uses that URI, with
/// the server's capabilities. Thread-safe (mongoc_client_pool_t is); held by shared_ptr.
class MongoPool {
 public:
  /// The pool of `uri`, created (and the server probed) on first use. Throws MongoError for a malformed
  /// URI or an unreachable server (after the URI's serverSelectionTimeoutMS).
  static std::shared_ptr<MongoPool> get(const std::string& uri);
  explicit MongoPool(const std::string& uri);
  ~MongoPool();
  MongoPool(const MongoPool&) = delete;
  MongoPool& operator=(const MongoPool&) = delete;

  mongoc_client_pool_t* pool() const { return _pool; }
  const std::string& database() const { return _database; }  ///< the URI's path, default "fleettwin"
  const MongoCapabilities& capabilities() const { return _caps; }

 private:
  mongoc_client_pool_t* _pool = nullptr;
  void* _uri = nullptr;  // mongoc_uri_t*, kept alive for the pool
  std::string _database;
  MongoCapabilities _caps;
};

/// The distributed-mode TwinStore on MongoDB or a MongoDB-compatible server (FerretDB), in the collections of
/// DESIGN.md §4: twins, telemetry, alerts, commands. Same semantics as SqliteStore (the contract tests run
/// both); idempotent under replay through deterministic ids and conditional upserts. Signals follow `catalog`
/// (null: the built-in one), by field name; documents carry the signals present (mongo_documents.h), so a
/// catalog that adds a signal needs no migration.
///
/// Threads: one instance per thread, like every TwinStore: it holds one client popped from the shared pool
/// for its whole life. Instances on several threads or processes may write the same data concurrently.
class MongoStore final : public TwinStore {
 public:
  /// Opens (and on first use indexes) the database named by the URI's path.
  explicit MongoStore(const std::string& uri, MongoOptions options = {},
                      std::shared_ptr<const catalog::Catalog> catalog = catalog::builtin());
  ~MongoStore() override;
  MongoStore(const MongoStore&) = delete;
  MongoStore& operator=(const MongoStore&) = delete;

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
  /// Deletes the oldest rows by _id in batches of 5,000 found through the ts index (mongo_analytics.cc).
  /// Queries nothing while the cutoff is at or below what the last run left and this instance wrote since
  /// (a scan on FerretDB 1.x), so with several writers each should run it for the rows it writes.
  RetentionResult enforce_retention(int64_t cutoff_ms) override;
  /// Window aggregates (mongo_aggregates.cc): guarded upserts by a deterministic _id (a later revision
  /// replaces, a replay is a duplicate key); retention deletes by _id, 5,000 at a time.
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
  /// A MongoError from the network, server selection or a server shutting down (MongoError::transient).
  bool transient_failure(const std::exception& error) const override;

  /// Calls `f` with every telemetry row, in no particular order: one pass over the collection (on FerretDB
  /// 1.24 every query of telemetry scans it anyway: docs/operations.md). For checks of a whole store (tests,
  /// tooling).
  void scan_telemetry(const std::function<void(const TelemetryRow&)>& f);
  const MongoCapabilities& capabilities() const { return _pool->capabilities(); }
  const catalog::Catalog& catalog() const { return *_catalog; }
  /// Bulk writes retried / given up since this instance opened.
  int64_t retries() const { return _retries; }
  int64_t errors() const { return _errors; }
  /// Drops the whole database (tests and `fleettwin` tooling only).
  void drop_database();

 private:
  class Impl;  // the collections (mongo_store_impl.h)
  std::shared_ptr<MongoPool> _pool;
  MongoOptions _options;
  std::shared_ptr<const catalog::Catalog> _catalog;
  mongoc_client_t* _client = nullptr;
  std::string _owner;  ///< unique per instance: the owner field of its twin lease locks
  std::unique_ptr<Impl> _impl;
  int64_t _retries = 0;
  int64_t _errors = 0;
  /// No history row this instance knows of is older: the oldest ts its last retention run left, lowered by
  /// every row it writes since. INT64_MIN until a run: unknown.
  int64_t _retention_floor = INT64_MIN;
};

}  // namespace fleettwin::store
