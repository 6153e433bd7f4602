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
#include "store_bench_loops.h"

namespace fleettwin::bench {
namespace {

using store::PgTelemetryPath;

constexpr int kCars = 2000;
constexpr int kBatches = 100;

std::string uri() {
  const char* u = std::getenv("FLEETTWIN_POSTGRES_URI");
  return u != nullptr ? u : "";
}

/// Empties the store's tables (between benchmarks: each starts from none).
void empty_tables() {
  store::PgConnection(uri()).exec("DROP TABLE IF EXISTS telemetry, twins, alerts, commands, fleettwin_meta");
}

/// The fleet's next `kStoreBatch` messages: car after car, round after round (seq = round, 1 s apart).
void next_batch(std::vector<store::TelemetryRow>& rows, int64_t& message) {
  rows.clear();
  for (int i = 0; i < kStoreBatch; ++i, ++message) {
    core::Telemetry t;
    const int64_t round = message / kCars;
    t.car = "car-" + std::to_string(10000 + message % kCars);
    t.seq = round + 1;
    t.ts = kFleetTs0 + round * 1000 + message % kCars;
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
  store::PostgresStore pg(uri(), store::PostgresOptions{path});
  int64_t message = 0;
  write_telemetry_batches(state, pg,
                          [&](std::vector<store::TelemetryRow>& rows) { next_batch(rows, message); });
}
BENCHMARK_CAPTURE(BM_PostgresTelemetryWrite, copy, PgTelemetryPath::kCopy)->Apply(timed_batches<kBatches>);
BENCHMARK_CAPTURE(BM_PostgresTelemetryWrite, multi_row, PgTelemetryPath::kMultiRow)
    ->Apply(timed_batches<kBatches>);

// A batch's twins: one newer twin for each of 2,000 cars (the sink's batch after a twin flush).
void BM_PostgresTwinUpsert(benchmark::State& state) {
  if (uri().empty()) {
    state.SkipWithError("set FLEETTWIN_POSTGRES_URI (scripts/services/postgres start)");
    return;
  }
  empty_tables();
  store::PostgresStore pg(uri());
  int64_t seq = 0;
  upsert_twin_batches(state, pg, [&](std::vector<core::Twin>& twins) {
    ++seq;
    twins.clear();
    for (int c = 0; c < kCars; ++c) {
      core::Twin& t = twins.emplace_back();
      t.id = "car-" + std::to_string(10000 + c);
      t.version = seq;
      t.has_reported = true;
      t.reported.car = t.id;
      t.reported.seq = seq;
      t.reported.ts = kFleetTs0 + seq * 1000;
      t.reported.values.assign(core::kSignalCount, 1.5);
      t.metadata.assign(core::kSignalCount, t.reported.ts);
    }
  });
}
BENCHMARK(BM_PostgresTwinUpsert)->Apply(timed_batches<20>);

}  // namespace
}  // namespace fleettwin::bench
