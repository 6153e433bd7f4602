// Micro benchmarks of the SQLite store (DESIGN.md §7.8). Run:
//   build/release/bench/store_bench --benchmark_filter='BM_Store'       the store itself
//   build/release/bench/store_bench --benchmark_filter='BM_Schema'      the telemetry schema candidates
// Telemetry arrives as a fleet sends it: 10,000 cars, one message each per round, rounds shuffled, written
// in batches of 5,000 rows (one transaction each). Every run starts from an empty file in the temp dir and
// writes 2 M rows, because the per-car-key schemas only slow down once the table outgrows the page cache.
#include <benchmark/benchmark.h>
#include <sqlite3.h>  // BM_Schema only; fleettwin_store links SQLite, the binary gets it from there

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/signals.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"
#include "store_bench_loops.h"

namespace {

using fleettwin::store::Db;
using fleettwin::store::SqliteStore;
using fleettwin::store::Stmt;
using fleettwin::store::TelemetryRow;
using fleettwin::store::WriteBatch;
namespace core = fleettwin::core;
namespace fs = std::filesystem;
using namespace fleettwin::bench;

constexpr int kCars = 10000;
constexpr int kBatch = kStoreBatch;
constexpr int kBatches = 400;  // 2 M rows
constexpr int64_t kTs0 = kFleetTs0;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fleettwin-store-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    _path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(_path, ec);
  }
  std::string db() const { return SqliteStore::path_in(_path.string()); }

 private:
  fs::path _path;
};

std::string car_name(int c) {
  char buf[16];
  snprintf(buf, sizeof buf, "car-%05d", c);
  return buf;
}

/// Produces the fleet's messages batch by batch: each round every car sends once, in a shuffled order.
class Fleet {
 public:
  Fleet() : _rng(42), _order(kCars), _seq(kCars, 0) {
    for (int c = 0; c < kCars; ++c) {
      _order[c] = c;
      _names.push_back(car_name(c));
    }
  }
  /// Fills `rows` (resized to kBatch) with the next batch.
  void next(std::vector<TelemetryRow>& rows) {
    rows.resize(kBatch);
    for (TelemetryRow& r : rows) {
      if (_pos == kCars) {
        _pos = 0;
        ++_round;
      }
      if (_pos == 0) std::shuffle(_order.begin(), _order.end(), _rng);
      int c = _order[_pos++];
      core::Telemetry& t = r.t;
      t.car = _names[c];
      t.seq = ++_seq[c];
      t.ts = kTs0 + _round * 1000 + c % 1000;
      t.lat = 48 + _u(_rng);
      t.lon = 11 + _u(_rng);
      for (size_t i = 0; i < core::kSignalCount; ++i) {
        double v = core::kSignals[i].min + _u(_rng) * (core::kSignals[i].max - core::kSignals[i].min);
        t.values[i] = core::kSignals[i].type == core::SignalType::kInt
                          ? static_cast<double>(static_cast<int64_t>(v))
                          : v;
      }
      r.score = _u(_rng);
    }
  }
  int car_index(const std::string& car) const { return std::stoi(car.substr(4)); }

 private:
  std::mt19937_64 _rng;
  std::uniform_real_distribution<double> _u{0, 1};
  std::vector<int> _order;
  std::vector<int64_t> _seq;
  std::vector<std::string> _names;
  int _pos = 0;
  int64_t _round = 0;
};

/// The store's options with the page size and generation size under test (the benchmark's arguments).
fleettwin::store::SqliteOptions options(const benchmark::State& state) {
  fleettwin::store::SqliteOptions o;
  o.page_size = static_cast<int>(state.range(0));
  o.telemetry_generation_rows = state.range(1);
  return o;
}

/// Page sizes at the default generation size, then generation sizes at the default page size.
void page_and_generation(benchmark::internal::Benchmark* b) {
  fleettwin::store::SqliteOptions defaults;
  b->ArgNames({"page", "gen"});
  for (int64_t page : {4096, 16384, 65536}) b->Args({page, defaults.telemetry_generation_rows});
  for (int64_t gen : {10000, 40000}) b->Args({defaults.page_size, gen});
}

void BM_StoreTelemetryWrite(benchmark::State& state) {
  TempDir dir;
  SqliteStore store(dir.db(), options(state));
  Fleet fleet;
  write_telemetry_batches(state, store, [&](std::vector<TelemetryRow>& rows) { fleet.next(rows); });
}
BENCHMARK(BM_StoreTelemetryWrite)->Apply(page_and_generation)->Apply(timed_batches<kBatches>);

// Replaying already-stored batches (a stage restarting from its last commit): every row is a duplicate and
// goes through the cross-generation lookup.
void BM_StoreTelemetryReplay(benchmark::State& state) {
  TempDir dir;
  SqliteStore store(dir.db());
  Fleet fleet;
  std::vector<WriteBatch> written(100);
  for (auto& b : written) {
    fleet.next(b.telemetry);
    store.write(b);
  }
  size_t i = 0;
  int64_t duplicates = 0;
  for (auto _ : state) duplicates += store.write(written[i++ % written.size()]).telemetry_duplicates;
  if (duplicates != int64_t{kBatch} * state.iterations()) state.SkipWithError("replay inserted rows");
  state.SetItemsProcessed(duplicates);
}
BENCHMARK(BM_StoreTelemetryReplay)->Apply(timed_batches<100>);

// history(car, whole range) over 2 M stored rows: 200 rows of one car spread over 100 generations.
void BM_StoreHistory(benchmark::State& state) {
  TempDir dir;
  SqliteStore store(dir.db(), options(state));
  Fleet fleet;
  WriteBatch batch;
  for (int i = 0; i < kBatches; ++i) {
    fleet.next(batch.telemetry);
    store.write(batch);
  }
  int c = 0;
  size_t rows = 0;
  for (auto _ : state) {
    rows += store.history(car_name(c), 0, INT64_MAX).size();
    c = (c + 7919) % kCars;
  }
  state.counters["rows_per_query"] = static_cast<double>(rows) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_StoreHistory)->Apply(page_and_generation)->Unit(benchmark::kMicrosecond);

// Retention (SqliteStore::enforce_retention) over 400,000 stored rows (40 rounds of the fleet): the rows of
// the first 20 rounds are older than the cutoff and removed, in 5,000-row statements, calls repeated while
// the store reports more. Rows removed per second; one statement holds the write lock for 5,000 rows at
// that rate.
void BM_StoreRetention(benchmark::State& state) {
  std::optional<SqliteStore> store;
  std::optional<TempDir> dir;
  int64_t removed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    store.reset();
    dir.emplace();
    store.emplace(dir->db());
    Fleet fleet;
    WriteBatch batch;
    for (int i = 0; i < 80; ++i) {
      fleet.next(batch.telemetry);
      store->write(batch);
    }
    state.ResumeTiming();
    fleettwin::store::RetentionResult r;
    do {
      r = store->enforce_retention(kTs0 + 20 * 1000);
      removed += r.removed;
    } while (r.more);
  }
  if (removed != int64_t{200000} * state.iterations()) state.SkipWithError("retention removed another count");
  state.SetItemsProcessed(removed);
}
BENCHMARK(BM_StoreRetention)->Iterations(3)->Unit(benchmark::kMillisecond);

// Twin upserts: 10,000 twins, batches of 5,000, each a newer state (applied, not refused).
void BM_StoreTwinUpsert(benchmark::State& state) {
  TempDir dir;
  SqliteStore store(dir.db(), options(state));
  int64_t seq = 0;
  int next_car = 0;
  upsert_twin_batches(state, store, [&](std::vector<core::Twin>& twins) {
    twins.resize(kBatch);
    for (core::Twin& t : twins) {
      if (next_car == kCars) {
        next_car = 0;
        ++seq;
      }
      t.id = car_name(next_car++);
      t.version = seq + 1;
      t.reported.car = t.id;
      t.reported.seq = seq + 1;
      t.reported.ts = kTs0 + seq * 1000;
      t.has_reported = true;
      t.desired = {{"max_speed", "30"}};
      t.health.status = core::HealthStatus::kOk;
      t.health.top_signals = {"coolant_temp", "speed", "throttle_pos"};
      t.health.model_version = "ae-1";
      t.online = true;
      t.last_seen = t.reported.ts;
      t.messages = seq + 1;
    }
  });
}
BENCHMARK(BM_StoreTwinUpsert)
    ->ArgNames({"page", "gen"})
    ->Args({4096, 20000})
    ->Args({16384, 20000})
    ->Args({65536, 20000})
    ->Apply(timed_batches<200>);

// --- Telemetry schema candidates (see the schema comment in src/store/sqlite/sqlite_schema.cc). Raw SQL,
// same rows, same pragmas as the store, INSERT OR IGNORE per row, one transaction per batch.
struct Candidate {
  const char* ddl;  // %s = the lat, lon, signal and score columns
  bool car_id;      // car as a small integer (a cars table in a real schema) rather than its text id
  bool generation;  // first column is a generation of 20,000 rows
};

const Candidate kCandidates[] = {
    {"CREATE TABLE t(car TEXT, seq INT, ts INT%s, PRIMARY KEY(car, seq)) WITHOUT ROWID", false, false},
    {"CREATE TABLE t(car INT, seq INT, ts INT%s); CREATE UNIQUE INDEX i ON t(car, ts, seq)", true, false},
    {"CREATE TABLE t(car INT, seq INT, ts INT%s, PRIMARY KEY(ts, car, seq)) WITHOUT ROWID;"
     " CREATE INDEX i ON t(car, ts)",
     true, false},
    {"CREATE TABLE t(car TEXT, seq INT, ts INT%s, PRIMARY KEY(ts, car, seq)) WITHOUT ROWID", false, false},
    {"CREATE TABLE t(gen INT, car TEXT, seq INT, ts INT%s, PRIMARY KEY(gen, car, ts, seq)) WITHOUT ROWID",
     false, true},
};

void BM_Schema(benchmark::State& state, int which) {
  const Candidate& cand = kCandidates[which];
  TempDir dir;
  Db db(dir.db());
  db.exec("PRAGMA page_size = 16384");
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA cache_size = -65536");
  std::string cols = ", lat REAL, lon REAL";
  for (const auto& s : core::kSignals)
    cols += ", " + std::string(s.name) + (s.type == core::SignalType::kInt ? " INTEGER" : " REAL");
  cols += ", score REAL";
  std::string ddl(cand.ddl);
  ddl.replace(ddl.find("%s"), 2, cols);
  db.exec(ddl);
  int n = 3 + 2 + static_cast<int>(core::kSignalCount) + 1 + (cand.generation ? 1 : 0);
  std::string sql = "INSERT OR IGNORE INTO t VALUES(?";
  for (int i = 1; i < n; ++i) sql += ", ?";
  Stmt ins(db.handle(), sql + ")");
  Stmt begin(db.handle(), "BEGIN"), commit(db.handle(), "COMMIT");
  Fleet fleet;
  std::vector<TelemetryRow> rows;
  int64_t inserted = 0, gen_rows = 0, gen = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fleet.next(rows);
    state.ResumeTiming();
    begin.run();
    begin.reset();
    for (const TelemetryRow& r : rows) {
      int p = 1;
      if (cand.generation) ins.bind(p++, gen);
      if (cand.car_id) {
        ins.bind(p++, int64_t{fleet.car_index(r.t.car)});
      } else {
        ins.bind(p++, std::string_view(r.t.car));
      }
      for (int64_t v : {r.t.seq, r.t.ts}) ins.bind(p++, v);
      for (double v : {r.t.lat, r.t.lon}) ins.bind(p++, v);
      for (double v : r.t.values) ins.bind(p++, v);
      ins.bind(p++, r.score);
      inserted += ins.run();
      ins.reset();
    }
    commit.run();
    commit.reset();
    if ((gen_rows += kBatch) >= 20000) {
      ++gen;
      gen_rows = 0;
    }
  }
  state.SetItemsProcessed(inserted);
}
BENCHMARK_CAPTURE(BM_Schema, car_seq_pk, 0)->Apply(timed_batches<kBatches>);
BENCHMARK_CAPTURE(BM_Schema, rowid_unique_carid_ts_seq, 1)->Apply(timed_batches<kBatches>);
BENCHMARK_CAPTURE(BM_Schema, ts_carid_seq_pk_carid_ts_index, 2)->Apply(timed_batches<kBatches>);
BENCHMARK_CAPTURE(BM_Schema, ts_car_seq_pk_no_car_index, 3)->Apply(timed_batches<kBatches>);
BENCHMARK_CAPTURE(BM_Schema, gen_car_ts_seq_pk, 4)->Apply(timed_batches<kBatches>);

}  // namespace
