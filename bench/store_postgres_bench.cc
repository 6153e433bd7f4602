// Micro benchmarks of the PostgreSQL store (DESIGN.md §7.8): the two telemetry write paths
// (PgTelemetryPath) and the twin upsert. Needs a server; run:
//   uri=$(scripts/services/postgres start)
//   FLEETTWIN_POSTGRES_URI=$uri build/release/bench/store_postgres_bench
//   scripts/services/postgres stop "$uri"
// Telemetry arrives as a fleet sends it: 2,000 cars, one message each per round, in batches of 5,000 rows
// (one transaction each), 100 batches (500,000 rows) into emptied tables.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/signals.h"
#include "store/postgres/pg_conn.h"
#include "store/postgres/postgres_store.h"

namespace {

using fleettwin::store::PgConnection;
using fleettwin::store::PgTelemetryPath;
using fleettwin::store::PostgresOptions;
using fleettwin::store::PostgresStore;
using fleettwin::store::WriteBatch;
namespace core = fleettwin::core;

constexpr int kCars = 2000;
constexpr int kBatch = 5000;
constexpr int kBatches = 100;
constexpr int64_t kTs0 = 1'764'000'000'000;

std::string uri() {
  const char* u = std::getenv("FLEETTWIN_POSTGRES_URI");
  return u != nullptr ? u : "";
}

/// Empties the store's tables (between benchmarks: each starts from none).
void empty_tables() {
  PgConnection(uri()).exec("DROP TABLE IF EXISTS telemetry, twins, alerts, commands, fleettwin_meta");
}

/// The fleet's next `kBatch` messages: car after car, round after round (seq = round, 1 s apart).
void next_batch(std::vector<fleettwin::store::TelemetryRow>& rows, int64_t& message) {
  rows.clear();
  for (int i = 0; i < kBatch; ++i, ++message) {
    core::Telemetry t;
    const int64_t round = message / kCars;
    t.car = "car-" + std::to_string(10000 + message % kCars);
    t.seq = round + 1;
    t.ts = kTs0 + round * 1000 + message % kCars;
    t.lat = 48 + 0.001 * static_cast<double>(message % 997);
    t.lon = 11 + 0.001 * static_cast<double>(message % 991);
    for (size_t s = 0; s < core::kSignalCount; ++s)
      t.values[s] = static_cast<double>(message % 1000) * 0.37 + s;
    rows.push_back({t, message % 3 == 0 ? std::optional(0.5) : std::nullopt});
  }
}

void BM_PostgresTelemetryWrite(benchmark::State& state, PgTelemetryPath path) {
  if (uri().empty()) {
    state.SkipWithError("set FLEETTWIN_POSTGRES_URI (scripts/services/postgres start)");
    return;
  }
  empty_tables();
  PostgresStore store(uri(), PostgresOptions{path});
  WriteBatch batch;
  int64_t message = 0;
  int64_t inserted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    next_batch(batch.telemetry, message);
    state.ResumeTiming();
    inserted += store.write(batch).telemetry_inserted;
  }
  if (inserted != int64_t{kBatch} * state.iterations()) state.SkipWithError("rows lost");
  state.SetItemsProcessed(inserted);
}
BENCHMARK_CAPTURE(BM_PostgresTelemetryWrite, copy, PgTelemetryPath::kCopy)
    ->Iterations(kBatches)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_PostgresTelemetryWrite, multi_row, PgTelemetryPath::kMultiRow)
    ->Iterations(kBatches)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// A batch's twins: one newer twin for each of 2,000 cars (the sink's batch after a twin flush).
void BM_PostgresTwinUpsert(benchmark::State& state) {
  if (uri().empty()) {
    state.SkipWithError("set FLEETTWIN_POSTGRES_URI (scripts/services/postgres start)");
    return;
  }
  empty_tables();
  PostgresStore store(uri());
  WriteBatch batch;
  int64_t seq = 0;
  int64_t applied = 0;
  for (auto _ : state) {
    state.PauseTiming();
    ++seq;
    batch.twins.clear();
    for (int c = 0; c < kCars; ++c) {
      core::Twin& t = batch.twins.emplace_back();
      t.id = "car-" + std::to_string(10000 + c);
      t.version = seq;
      t.has_reported = true;
      t.reported.car = t.id;
      t.reported.seq = seq;
      t.reported.ts = kTs0 + seq * 1000;
      t.reported.values.assign(core::kSignalCount, 1.5);
      t.metadata.assign(core::kSignalCount, t.reported.ts);
    }
    state.ResumeTiming();
    applied += store.write(batch).twins_applied;
  }
  if (applied != int64_t{kCars} * state.iterations()) state.SkipWithError("twins refused");
  state.SetItemsProcessed(applied);
}
BENCHMARK(BM_PostgresTwinUpsert)->Iterations(20)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
