#include "app/aggregate_state.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "core/signals.h"
#include "core/topics.h"
#include "stages/aggregate/aggregate_resume.h"

namespace fleettwin::app {

AggregateStateTable::AggregateStateTable(const std::string& path) : _db(path) {
  // WAL and synchronous NORMAL: a killed process loses no committed flush (the WAL is in the file system),
  // and a power cut at most the last flushes, which a restart replays from the store. A flush writes every
  // changed car in one transaction, up to the whole table, and a checkpoint leaves the WAL at its high-water
  // mark: journal_size_limit trims it back afterwards, as the store does (a soak at 100,000 cars kept 494 MB
  // of spent WAL beside a 491 MB table).
  _db.exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864; "
      "CREATE TABLE IF NOT EXISTS aggregate_state(car TEXT PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID");
  _upsert = store::Stmt(_db.handle(),
                        "INSERT INTO aggregate_state(car, state) VALUES(?1, ?2) "
                        "ON CONFLICT(car) DO UPDATE SET state = excluded.state");
}

std::vector<stages::AggregateSnapshot> AggregateStateTable::load(int64_t* refused) {
  std::lock_guard lock(_mu);
  std::vector<stages::AggregateSnapshot> out;
  int64_t bad = 0;
  store::Stmt select(_db.handle(), "SELECT car, state FROM aggregate_state ORDER BY car");
  store::StmtScope scope(select);
  while (select.step()) {
    // Typed columns are not enforced by SQLite: a text or number cell reads back as its bytes.
    const std::string car = select.column_text(0);
    const std::string_view state = select.column_blob(1);
    const bool key_ok = core::valid_car_id(car) || stages::AggregateStage::group_state_partition(car) >= 0;
    if (!key_ok || state.empty() || state.size() > kMaxStateBytes) {
      ++bad;
      continue;
    }
    out.push_back({car, std::string(state)});
  }
  if (refused) *refused = bad;
  return out;
}

void AggregateStateTable::save(const std::vector<stages::AggregateSnapshot>& cars) {
  if (cars.empty()) return;
  std::lock_guard lock(_mu);
  _db.exec("BEGIN");
  try {
    for (const auto& c : cars) {
      store::StmtScope scope(_upsert);
      _upsert.bind(1, std::string_view(c.car)).bind_blob(2, c.state).run();
    }
    _db.exec("COMMIT");
  } catch (...) {
    _db.exec("ROLLBACK");
    throw;
  }
}

int64_t AggregateStateTable::cars() {
  std::lock_guard lock(_mu);
  return _db.query_int("SELECT count(*) FROM aggregate_state");
}

namespace {

/// Every car the store has rows or a twin of, with its newest ts when its twin tells it.
std::map<std::string, std::optional<int64_t>> stored_cars(store::TwinStore& store) {
  std::map<std::string, std::optional<int64_t>> cars;
  for (const auto& [car, seq] : store.max_seq_per_car()) cars.emplace(car, std::nullopt);
  store::TwinQuery q;
  q.limit = 10000;
  for (;;) {
    const auto twins = store.list_twins(q);
    if (twins.empty()) break;
    q.after_id = twins.back().id;
    for (const auto& twin : twins)
      if (twin.has_reported) cars[twin.id] = twin.reported.ts;
  }
  return cars;
}

}  // namespace

int64_t replay_history(store::TwinStore& store, const stages::AggregateStage::ReplayFrom& from,
                       const stages::AggregateStage::ReplayAdd& add, int64_t page) {
  using Clock = std::chrono::steady_clock;
  const auto cars = stored_cars(store);
  const auto started = Clock::now();
  auto next_report = started + std::chrono::seconds(5);
  int64_t rows = 0;
  std::size_t done = 0;
  for (const auto& [car, newest] : cars) {
    int64_t at = from(car, newest);
    for (;;) {
      const auto batch = store.history(car, at, std::numeric_limits<int64_t>::max(), page);
      for (const auto& row : batch) add(row.t);
      rows += static_cast<int64_t>(batch.size());
      if (static_cast<int64_t>(batch.size()) < page) break;
      // The next page starts at the last ts read: rows of that ts come again, and the engine's seq guard
      // takes each once. A page that is all one ts moves on past it.
      at = batch.back().t.ts > at ? batch.back().t.ts : batch.back().t.ts + 1;
    }
    ++done;
    if (Clock::now() >= next_report) {
      spdlog::info("aggregate: replaying the store's history: {} of {} cars, {} events read", done,
                   cars.size(), rows);
      next_report += std::chrono::seconds(5);
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  spdlog::info("aggregate: {} stored events of {} cars read in {} ms", rows, cars.size(), ms);
  return rows;
}

stages::AggregateStage::Links embedded_aggregate_links(log::Log& log, const std::string& data_dir,
                                                       StoreOpener open_store) {
  const std::filesystem::path dir(data_dir);
  auto table = std::make_shared<AggregateStateTable>((dir / "aggregate_state.sqlite").string());
  if (auto old = stages::take_aggregate_snapshot((dir / "aggregate.state").string()); !old.empty())
    table->save(old);
  int64_t refused = 0;
  auto saved = std::make_shared<std::vector<stages::AggregateSnapshot>>(table->load(&refused));
  if (refused > 0)
    spdlog::warn(
        "aggregate: {} rows of aggregate_state.sqlite are not a car's state; those cars start from "
        "the store's history",
        refused);
  stages::AggregateStage::Links links;
  links.load = [saved](const std::set<int32_t>&) { return std::exchange(*saved, {}); };
  links.save = [table](const std::vector<stages::AggregateSnapshot>& cars) { table->save(cars); };
  links.results_stored = [&log]() -> std::function<bool()> {
    return [&log, ends = log.end_offsets(core::topics::kAggregates)] {
      const auto committed = log.committed_offsets("fleettwin.sink", core::topics::kAggregates);
      for (std::size_t p = 0; p < ends.size(); ++p)
        if (ends[p] > 0 && (p >= committed.size() || committed[p] < ends[p])) return false;
      return true;
    };
  };
  links.replay = [open = std::move(open_store)](const stages::AggregateStage::ReplayFrom& from,
                                                const stages::AggregateStage::ReplayAdd& add) {
    auto store = open();
    replay_history(*store, from, add);
  };
  return links;
}

void create_aggregate_topics(log::Log& log, const std::string& group, const log::TopicConfig& compacted,
                             stages::AggregateStage::Options& options) {
  options.state_topic = stages::AggregateStage::role_topic(core::topics::kAggregatesState, group);
  options.partials_topic = stages::AggregateStage::role_topic(core::topics::kAggregatesPartials, group);
  for (const auto& t : {options.state_topic, options.partials_topic}) log.create_topic(t, compacted);
  // create_topic leaves an existing topic as it is: partials sent by the settings' count would go to
  // partitions the topic may not have, and a combiner would look for a group where its writers do not put it.
  options.partials_partitions = static_cast<int32_t>(log.end_offsets(options.partials_topic).size());
}

stages::AggregateStage::Links changelog_aggregate_links(log::Log& log,
                                                        const stages::AggregateStage::Options& options) {
  stages::AggregateStage::Links links;
  links.load = [&log, topic = options.state_topic](const std::set<int32_t>& partitions) {
    return stages::read_aggregate_changelog(log, partitions, std::chrono::seconds(60), topic);
  };
  links.load_partials = [&log, topic = options.partials_topic](const std::set<int32_t>& partitions) {
    return stages::read_compacted_latest(log, topic, partitions);
  };
  return links;
}

}  // namespace fleettwin::app
