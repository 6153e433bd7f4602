#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "app/store_factory.h"
#include "log/log.h"
#include "stages/aggregate/aggregate_stage.h"
#include "store/sqlite/sqlite_db.h"
#include "store/twin_store.h"

namespace fleettwin::app {

/// The embedded aggregate stage's windows between runs of `up` (docs/architecture.md "State across
/// restarts, embedded"): an SQLite file in the data dir, one row per car with its Engine::save_car bytes
/// (seq guard, open windows, closed ones still taking late events), upserted in one transaction per flush
/// of the stage. The stage's thread saves; the main thread loads before the stages start and saves once
/// more after they stopped. One mutex around the connection.
class AggregateStateTable {
 public:
  /// A saved state larger than this is not a car's (about 13 KB with the shipped definitions; the bound
  /// leaves room for many more definitions, each bounded by the engine).
  static constexpr std::size_t kMaxStateBytes = 16U << 20;

  /// Opens (creates) the file; throws store::SqliteError.
  explicit AggregateStateTable(const std::string& path);
  /// Every car's saved state. The file is outside input: a row whose car id is not valid or whose state is
  /// empty or larger than kMaxStateBytes is left out and counted in `refused` (may be null); the bytes
  /// themselves are checked by Engine::restore_car.
  std::vector<stages::AggregateSnapshot> load(int64_t* refused = nullptr);
  /// Upserts each car's state, all in one transaction; throws store::SqliteError (nothing written then).
  void save(const std::vector<stages::AggregateSnapshot>& cars);
  /// Cars saved.
  int64_t cars();

 private:
  std::mutex _mu;
  store::Db _db;
  store::Stmt _upsert;
};

/// Feeds `add` the history `store` holds of every car it has (stored rows, and twins), per car oldest first
/// (ts, then seq) from the ts `from` gives the car, `page` rows at a time, so memory holds one page; says
/// how far it got in the log every few seconds. Returns the rows read. Used by the embedded aggregate stage
/// at start (AggregateStage::Links::replay).
int64_t replay_history(store::TwinStore& store, const stages::AggregateStage::ReplayFrom& from,
                       const stages::AggregateStage::ReplayAdd& add, int64_t page = 10000);

/// The aggregate stage's changelog and partials topics, created compacted (`compacted`: the topic settings)
/// and named in `options`: after the role's consumer `group` when it has one of its own, so two aggregate
/// roles never share them (AggregateStage::role_topic), the defaults otherwise (docs/architecture.md "Group
/// windows"). The partials are partitioned by the topic's partition count as it is, not the settings': an
/// existing topic keeps its count when the settings change, and an operator may have added partitions.
void create_aggregate_topics(log::Log& log, const std::string& group, const log::TopicConfig& compacted,
                             stages::AggregateStage::Options& options);

/// On Kafka: the aggregate stage's links that read its changelog and partials (`options`' topics) back when
/// it gains partitions (read_aggregate_changelog, read_compacted_latest).
stages::AggregateStage::Links changelog_aggregate_links(log::Log& log,
                                                        const stages::AggregateStage::Options& options);

/// How `up` links its aggregate stage (docs/architecture.md "State across restarts, embedded"): each car's
/// state in `<data_dir>/aggregate_state.sqlite` (a clean stop's `aggregate.state` of earlier versions taken
/// over once), saved at each flush once the sink (group fleettwin.sink) has committed past every
/// fleet.aggregates record written before it, and at start the store's history after each car's saved state
/// (replay_history on a store `open_store` opens on the stage's thread). Throws store::SqliteError when the
/// table cannot be opened.
stages::AggregateStage::Links embedded_aggregate_links(log::Log& log, const std::string& data_dir,
                                                       StoreOpener open_store);

}  // namespace fleettwin::app
