// TelemetryReader micro benchmarks: what a reader stage pays per Avro record read by the schema id it
// carries. ReadOwnSchema is the fast path (records written with the reader's own schema, the common case);
// ReadResolved reads records of another catalog version through its resolution plan. Both talk to an
// embedded registry once, before the timed loop. Run: build/<dir>/bench/telemetry_reader_bench

#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "bench_telemetry.h"
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
  std::vector<std::string> out;
  for (std::size_t n = 0; n < kPool; ++n) {
    std::string s;
    codec::encode_avro_telemetry(bench::random_telemetry(rng), schema_id, s);
    out.push_back(std::move(s));
  }
  return out;
}

/// Reads the built-in catalog's records, registered with an embedded registry, with a reader on `catalog`.
void read_builtin_records(benchmark::State& state, const std::shared_ptr<const catalog::Catalog>& catalog) {
  registry::EmbeddedRegistry server(registry::EmbeddedRegistryOptions{});
  server.start();
  auto client = std::make_shared<registry::SchemaRegistryClient>(server.url());
  const int32_t id =
      client->register_schema(registry::subject_for_topic("fleet.telemetry"), codec::car_telemetry_schema());
  const auto payloads = records(id);
  registry::TelemetryReader reader(client, catalog);
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

void BM_ReadOwnSchema(benchmark::State& state) { read_builtin_records(state, catalog::builtin()); }
BENCHMARK(BM_ReadOwnSchema);

// cardata-v1 records read by a reader on v1 plus two newer signals: the resolution plan of the v1 schema.
void BM_ReadResolved(benchmark::State& state) {
  auto signals = catalog::builtin()->signals();
  for (const char* name : {"odometer", "cabin_temp"}) {
    catalog::SignalSpec s;
    s.name = s.field = name;
    s.max = 1e6;
    s.since = 2;
    signals.push_back(s);
  }
  read_builtin_records(state, std::make_shared<const catalog::Catalog>("cardata", 2, "", signals));
}
BENCHMARK(BM_ReadResolved);

}  // namespace
