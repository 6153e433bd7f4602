// Scoring throughput of the anomaly model (the target: at least 1,000,000 events/s per core) and the libtorch
// forward pass the plain-loop network replaces. Run: build/<dir>/bench/ml_bench
#include <benchmark/benchmark.h>

#include "ml/dataset.h"
#include "ml/drift.h"
#include "ml/monitor.h"
#include "ml/training.h"
#include "sim/fleet.h"

namespace {

using namespace fleettwin;

struct Fixture {
  std::vector<core::Telemetry> events;
  ml::TrainingData data;
  std::shared_ptr<ml::Model> ours, reference;
  Fixture() {
    sim::FleetConfig c;
    c.cars = 100;
    c.duration_ms = 100 * c.interval_ms;
    c.failure_rate = 0.5;
    sim::Fleet fleet(c);
    core::Telemetry t;
    while (fleet.next(t)) events.push_back(t);
    auto copy = events;
    data = ml::make_training_data(copy, "bench");
    ml::TrainOptions o;
    o.max_epochs = 2;
    o.progress = false;
    ours = ml::train_model(data, ml::fleettwin_architecture(), o);
    reference = ml::train_model(data, ml::reference_architecture(), o);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Scaling, reconstruction, score and top-3 explanation of extracted feature rows.
void BM_ScoreFeatures(benchmark::State& state, bool reference) {
  auto& f = fixture();
  ml::Scorer scorer(reference ? f.reference : f.ours);
  const std::size_t rows = f.data.rows();
  std::vector<float> scores(rows);
  std::vector<std::array<ml::Contribution, 3>> top(rows);
  for (auto _ : state) {
    scorer.score(f.data.features.data(), rows, scores.data(), top.data());
    benchmark::DoNotOptimize(scores.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows));
}
BENCHMARK_CAPTURE(BM_ScoreFeatures, fleettwin, false);
BENCHMARK_CAPTURE(BM_ScoreFeatures, reference, true);

// What the score stage does per event besides Avro: features with per-car state, score, explanation,
// AnomalyScore values, hysteresis and the firmware rule.
void BM_MonitorBatch(benchmark::State& state) {
  auto& f = fixture();
  ml::Monitor monitor;
  monitor.set_model(f.ours);
  std::vector<core::Telemetry> batch(f.events.begin(), f.events.begin() + 5000);
  ml::MonitorOutput out;
  for (auto _ : state) {
    out.clear();
    monitor.process(batch, out);
    benchmark::DoNotOptimize(out.scores.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch.size()));
}
BENCHMARK(BM_MonitorBatch);

// The drift watch the score stage runs after each batch (docs/architecture.md "Drift watch"): every event
// into the window (one bin per watched signal), then the PSI of every signal; compare with BM_MonitorBatch.
void BM_DriftWatchBatch(benchmark::State& state) {
  auto& f = fixture();
  ml::DriftWatch watch(20'000);
  watch.reset(f.ours->meta.drift);
  std::vector<core::Telemetry> batch(f.events.begin(), f.events.begin() + 5000);
  for (auto _ : state) {
    for (const auto& e : batch) watch.add(e);
    benchmark::DoNotOptimize(watch.compute().data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch.size()));
  state.counters["signals"] = static_cast<double>(watch.references().size());
}
BENCHMARK(BM_DriftWatchBatch);

// The same reconstruction through libtorch, batch size as given.
void BM_TorchReconstruct(benchmark::State& state) {
  auto& f = fixture();
  const auto rows = static_cast<std::size_t>(state.range(0));
  const std::size_t d = f.ours->mlp.inputs();
  std::vector<float> in(rows * d, 0.1f), out(rows * d);
  for (auto _ : state) {
    ml::torch_reconstruct(*f.ours, in.data(), rows, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows));
}
BENCHMARK(BM_TorchReconstruct)->Arg(16)->Arg(256)->Arg(5000);

void BM_PlainReconstruct(benchmark::State& state) {
  auto& f = fixture();
  const auto rows = static_cast<std::size_t>(state.range(0));
  const std::size_t d = f.ours->mlp.inputs();
  std::vector<float> in(rows * d, 0.1f), out(rows * d), scratch;
  for (auto _ : state) {
    f.ours->mlp.forward(in.data(), rows, out.data(), scratch);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows));
}
BENCHMARK(BM_PlainReconstruct)->Arg(16)->Arg(256)->Arg(5000);

}  // namespace
