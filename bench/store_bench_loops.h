#pragma once
// What the store micro benchmarks share (store_bench.cc: SQLite, store_postgres_bench.cc: PostgreSQL): the
// sink's batch size, the timing of a write benchmark and its measured loops, so that both stores are
// measured the same way.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "core/twin.h"
#include "store/twin_store.h"

namespace fleettwin::bench {

/// Telemetry rows per batch (one write, one transaction each), as the sink writes them.
constexpr int kStoreBatch = 5000;
/// Device time of the fleet's first message.
constexpr int64_t kFleetTs0 = 1'764'000'000'000;

/// A write benchmark's timing: `Batches` iterations of one batch each, in wall-clock ms (writes wait on I/O).
template <int Batches>
void timed_batches(benchmark::internal::Benchmark* b) {
  b->Iterations(Batches)->Unit(benchmark::kMillisecond)->UseRealTime();
}

/// Each iteration writes the telemetry batch `next(rows)` makes (untimed) into `store`; an error if a row
/// was not inserted. Items: rows inserted.
template <typename Next>
void write_telemetry_batches(benchmark::State& state, store::TwinStore& store, Next&& next) {
  store::WriteBatch batch;
  int64_t inserted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    next(batch.telemetry);
    state.ResumeTiming();
    inserted += store.write(batch).telemetry_inserted;
  }
  if (inserted != int64_t{kStoreBatch} * state.iterations()) state.SkipWithError("rows lost");
  state.SetItemsProcessed(inserted);
}

/// Each iteration writes the `twins` batch `next(twins)` makes (untimed), each twin newer than the stored
/// one, into `store`; an error if one was refused. Items: twins applied.
template <typename Next>
void upsert_twin_batches(benchmark::State& state, store::TwinStore& store, Next&& next) {
  store::WriteBatch batch;
  int64_t applied = 0;
  int64_t expected = 0;
  for (auto _ : state) {
    state.PauseTiming();
    next(batch.twins);
    expected += static_cast<int64_t>(batch.twins.size());
    state.ResumeTiming();
    applied += store.write(batch).twins_applied;
  }
  if (applied != expected) state.SkipWithError("twins refused");
  state.SetItemsProcessed(applied);
}

}  // namespace fleettwin::bench
