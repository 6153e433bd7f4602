// Codec micro benchmarks: the per-message costs of the telemetry path (budget: 200,000 msg/s end to end on
// two cores, so each step must stay well under 1 µs). Run: build/<dir>/bench/codec_bench
// Messages cycle through a pool of random, full-precision telemetry so branch predictors cannot memorise
// one payload.

#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "bench_telemetry.h"
#include "codec/avro.h"
#include "codec/json.h"
#include "core/signals.h"
#include "core/telemetry.h"

namespace {

using namespace fleettwin;

constexpr std::size_t kPool = 1024;

using bench::random_telemetry;

const std::vector<core::Telemetry>& pool() {
  static const std::vector<core::Telemetry> p = [] {
    std::mt19937_64 rng(42);
    std::vector<core::Telemetry> v;
    for (std::size_t i = 0; i < kPool; ++i) v.push_back(random_telemetry(rng));
    return v;
  }();
  return p;
}

// JSON payloads as a log record holds them: std::string with capacity == size (no room for padding).
std::vector<std::string> json_pool(bool padded) {
  std::vector<std::string> out;
  for (const auto& t : pool()) {
    std::string s;
    codec::encode_json(t, s);
    std::string exact;
    exact.reserve(padded ? s.size() + codec::kJsonPadding : s.size());
    exact = s;
    out.push_back(std::move(exact));
  }
  return out;
}

void finish(benchmark::State& state, std::size_t bytes) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes / kPool));
}

std::size_t total_size(const std::vector<std::string>& v) {
  std::size_t n = 0;
  for (const auto& s : v) n += s.size();
  return n;
}

/// Each iteration decodes the next of `payloads` (JSON) and passes the record to `then`.
template <typename F>
void decode_json_each(benchmark::State& state, const std::vector<std::string>& payloads, F&& then) {
  codec::TelemetryDecoder decoder;
  core::Telemetry t;
  codec::DecodeError error;
  std::size_t i = 0;
  for (auto _ : state) {
    if (!decoder.decode(payloads[i++ % kPool], t, error)) state.SkipWithError(error.detail.c_str());
    then(t);
  }
}

void BM_DecodeJson(benchmark::State& state, bool padded) {
  // With room for simdjson's padding the payload is parsed in place; without, it is copied first.
  const auto payloads = json_pool(padded);
  decode_json_each(state, payloads, [](core::Telemetry& t) { benchmark::DoNotOptimize(t); });
  finish(state, total_size(payloads));
}
BENCHMARK_CAPTURE(BM_DecodeJson, copy, false);
BENCHMARK_CAPTURE(BM_DecodeJson, in_place, true);

void BM_EncodeJson(benchmark::State& state) {
  std::string out;
  std::size_t i = 0;
  for (auto _ : state) {
    out.clear();
    codec::encode_json(pool()[i++ % kPool], out);
    benchmark::DoNotOptimize(out.data());
  }
  finish(state, total_size(json_pool(false)));
}
BENCHMARK(BM_EncodeJson);

void BM_EncodeAvro(benchmark::State& state) {
  std::string out;
  std::size_t i = 0;
  for (auto _ : state) {
    out.clear();
    codec::encode_avro_telemetry(pool()[i++ % kPool], 1, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_EncodeAvro);

void BM_DecodeAvro(benchmark::State& state) {
  std::vector<std::string> payloads;
  for (const auto& t : pool()) {
    std::string s;
    codec::encode_avro_telemetry(t, 1, s);
    payloads.push_back(std::move(s));
  }
  core::Telemetry t;
  std::string error;
  std::size_t i = 0;
  for (auto _ : state) {
    if (!codec::decode_avro_telemetry(payloads[i++ % kPool], t, nullptr, &error)) {
      state.SkipWithError(error.c_str());
    }
    benchmark::DoNotOptimize(t);
  }
  finish(state, total_size(payloads));
}
BENCHMARK(BM_DecodeAvro);

// What the process stage does per record: validate JSON, write Avro.
void BM_ProcessJsonToAvro(benchmark::State& state) {
  std::string out;
  decode_json_each(state, json_pool(false), [&out](const core::Telemetry& t) {
    out.clear();
    codec::encode_avro_telemetry(t, 1, out);
    benchmark::DoNotOptimize(out.data());
  });
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ProcessJsonToAvro);

void BM_RejectJson(benchmark::State& state) {
  // The DLQ path must not be a cliff either: a typical bad payload (out of range).
  std::string payload;
  core::Telemetry bad = pool()[0];
  bad.values[core::kSpeed] = 1000;
  codec::encode_json(bad, payload);
  codec::TelemetryDecoder decoder;
  core::Telemetry t;
  codec::DecodeError error;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder.decode(payload, t, error));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_RejectJson);

/// The twin of the pool's first car, with desired settings.
core::Twin sample_twin() {
  core::Twin twin;
  twin.id = pool()[0].car;
  twin.reported = pool()[0];
  twin.has_reported = true;
  twin.desired = {{"max_speed", "30"}, {"mode", "\"eco\""}};
  return twin;
}

void BM_TwinToJson(benchmark::State& state) {
  core::Twin twin = sample_twin();
  twin.health.top_signals = {"coolant_temp", "speed"};
  for (auto _ : state) {
    std::string json = codec::twin_to_json(twin);
    benchmark::DoNotOptimize(json.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_TwinToJson);

void BM_TwinFromJson(benchmark::State& state) {
  const std::string json = codec::twin_to_json(sample_twin());
  core::Twin back;
  std::string error;
  for (auto _ : state) {
    if (!codec::twin_from_json(json, back, &error)) state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(back);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_TwinFromJson);

}  // namespace
