// TelemetryReader micro benchmarks: what a reader stage pays per Avro record read by the schema id it
// carries. ReadOwnSchema is the fast path (records written with the reader's own schema, the common case);
// ReadResolved reads records of another catalog version through its resolution plan. Both talk to an
// embedded registry once, before the timed loop. Run: build/<dir>/bench/telemetry_reader_bench

#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "codec/avro.h"
#include "core/signals.h"
#include "core/telemetry.h"
#include "registry/client.h"
#include "registry/protocol.h"
#include "registry/server.h"
#include "registry/telemetry_reader.h"

namespace {

using namespace fleettwin;

constexpr std::size_t kPool = 1024;

std::vector<std::string> records(int32_t schema_id) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<std::string> out;
  for (std::size_t n = 0; n < kPool; ++n) {
    core::Telemetry t;
    t.car = "car-" + std::to_string(10000 + rng() % 90000);
    t.ts = 1718000000000 + static_cast<int64_t>(rng() % 1000000000);
    t.seq = 1 + static_cast<int64_t>(n);
    t.lat = -90 + 180 * unit(rng);
    t.lon = -180 + 360 * unit(rng);
    for (std::size_t i = 0; i < core::kSignalCount; ++i) {
      const auto& s = core::kSignals[i];
      double v = s.min + (s.max - s.min) * unit(rng);
      if (s.type == core::SignalType::kInt) v = static_cast<double>(static_cast<int64_t>(v));
      t.values[i] = v;
    }
    std::string s;
    codec::encode_avro_telemetry(t, schema_id, s);
    out.push_back(std::move(s));
  }
  return out;
}

void BM_ReadOwnSchema(benchmark::State& state) {
  registry::EmbeddedRegistry server(registry::EmbeddedRegistryOptions{});
  server.start();
  auto client = std::make_shared<registry::SchemaRegistryClient>(server.url());
  const int32_t id =
      client->register_schema(registry::subject_for_topic("fleet.telemetry"), codec::car_telemetry_schema());
  const auto payloads = records(id);
  registry::TelemetryReader reader(client);
  core::Telemetry t;
  std::string error;
  std::size_t i = 0;
  for (auto _ : state) {
    if (!reader.read(payloads[i++ % kPool], t, &error)) state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  server.stop();
}
BENCHMARK(BM_ReadOwnSchema);

// cardata-v1 records read by a reader on v1 plus two newer signals: the resolution plan of the v1 schema.
void BM_ReadResolved(benchmark::State& state) {
  registry::EmbeddedRegistry server(registry::EmbeddedRegistryOptions{});
  server.start();
  auto client = std::make_shared<registry::SchemaRegistryClient>(server.url());
  const int32_t id =
      client->register_schema(registry::subject_for_topic("fleet.telemetry"), codec::car_telemetry_schema());
  const auto payloads = records(id);
  auto signals = catalog::builtin()->signals();
  for (const char* name : {"odometer", "cabin_temp"}) {
    catalog::SignalSpec s;
    s.name = s.field = name;
    s.max = 1e6;
    s.since = 2;
    signals.push_back(s);
  }
  registry::TelemetryReader reader(client,
                                   std::make_shared<const catalog::Catalog>("cardata", 2, "", signals));
  core::Telemetry t;
  std::string error;
  std::size_t i = 0;
  for (auto _ : state) {
    if (!reader.read(payloads[i++ % kPool], t, &error)) state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  server.stop();
}
BENCHMARK(BM_ReadResolved);

}  // namespace
