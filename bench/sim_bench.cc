// Micro benchmarks of the fleet simulator: the cost of one message, which bounds how many cars one core
// can simulate (the platform's target is 200,000 msg/s end to end on 2 cores, shared with the pipeline).
#include <benchmark/benchmark.h>

#include "core/telemetry.h"
#include "sim/fleet.h"

namespace {

using fleettwin::core::Telemetry;
using fleettwin::sim::Fleet;
using fleettwin::sim::FleetConfig;

FleetConfig config(int64_t cars) {
  FleetConfig c;
  c.cars = static_cast<std::size_t>(cars);
  c.seed = 7;
  c.start_ms = 1'764'144'000'000;
  return c;  // default failure rate: a realistic mix of healthy and failing cars
}

// Fleet::next for a whole fleet in due-time order; one iteration = one message.
void BM_FleetNext(benchmark::State& state) {
  Fleet fleet(config(state.range(0)));
  Telemetry t;
  for (auto _ : state) {
    fleet.next(t);
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FleetNext)->Arg(10'000)->Arg(100'000);

// Fleet::next with failures everywhere (every car develops every mode within hours).
void BM_FleetNextFailing(benchmark::State& state) {
  FleetConfig c = config(state.range(0));
  c.failure_rate = 5.0;
  Fleet fleet(c);
  Telemetry t;
  for (auto _ : state) {
    fleet.next(t);
    benchmark::DoNotOptimize(t);
    if (t.seq % 64 == 0) benchmark::DoNotOptimize(fleet.take_failures());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FleetNextFailing)->Arg(10'000);

// Fleet::resume: replays every car to its last seq; one item = one replayed message.
void BM_FleetResume(benchmark::State& state) {
  const int64_t cars = 1'000, seq = state.range(0);
  Fleet fleet(config(cars));
  std::vector<std::pair<std::string, int64_t>> last;
  for (int64_t i = 0; i < cars; ++i) last.emplace_back(fleet.car_id(static_cast<std::size_t>(i)), seq);
  for (auto _ : state) fleet.resume(last);
  state.SetItemsProcessed(state.iterations() * cars * seq);
}
BENCHMARK(BM_FleetResume)->Arg(360)->Unit(benchmark::kMillisecond);

}  // namespace
