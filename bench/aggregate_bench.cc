// Micro benchmark of the aggregation engine (issue 19): the shipped definitions (events per car per 5
// minutes, an hourly per-car summary with two percentile sketches) over 10,000 cars that each send every 10
// s, in event-time order: a 5 s run covers about 3 hours of event time, so hourly windows close as in a long
// run. One item = one event; the target is 1,000,000 events/s on one core (items_per_second is per CPU
// second). Besides the rate: the engine's bytes per car, and the bytes of a car's saved state (the
// changelog).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "aggregate/engine.h"
#include "catalog/catalog.h"
#include "core/telemetry.h"

namespace {

using fleettwin::aggregate::Engine;
using fleettwin::core::Telemetry;

constexpr int64_t kInterval = 10'000;  // ms between a car's messages

void BM_AggregateDefaults(benchmark::State& state) {
  const auto catalog = fleettwin::catalog::builtin();
  const auto cars = static_cast<std::size_t>(state.range(0));
  Engine engine(fleettwin::aggregate::defaults(*catalog));
  std::vector<Telemetry> fleet(cars);
  const std::size_t speed = catalog->index_of("speed");
  const std::size_t coolant = catalog->index_of("coolant_temp");
  const std::size_t vibration = catalog->index_of("engine_vibration_amplitude");
  const std::size_t battery = catalog->index_of("battery_voltage");
  for (std::size_t i = 0; i < cars; ++i) {
    fleet[i].car = "car-" + std::to_string(100000 + i);
    fleet[i].values.assign(catalog->size(), 1.0);
  }
  const int64_t start = 1'764'144'000'000;
  std::size_t n = 0;
  uint64_t results = 0;
  for (auto _ : state) {
    Telemetry& t = fleet[n % cars];
    const auto step = static_cast<int64_t>(n / cars);
    t.seq = step + 1;
    t.ts = start + step * kInterval + static_cast<int64_t>(n % cars) * kInterval / static_cast<int64_t>(cars);
    const auto wobble = static_cast<double>(n % 97);
    t.values[speed] = 20 + wobble * 0.3;
    t.values[coolant] = 85 + wobble * 0.1;
    t.values[vibration] = 300 + wobble * 7;
    t.values[battery] = 12.4 + wobble * 0.01;
    benchmark::DoNotOptimize(engine.add(t));
    if (++n % cars == 0) results += engine.flush().size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["results"] = static_cast<double>(results);
  state.counters["bytes_per_car"] = static_cast<double>(engine.memory_bytes()) / static_cast<double>(cars);
  std::size_t saved = 0;
  for (std::size_t i = 0; i < cars; i += 100) saved += engine.save_car(fleet[i].car).size();
  state.counters["saved_bytes_per_car"] = static_cast<double>(saved) / static_cast<double>((cars + 99) / 100);
}
BENCHMARK(BM_AggregateDefaults)->Arg(10'000)->MinTime(5.0);

}  // namespace
