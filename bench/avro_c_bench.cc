// fleettwin's hand-written Avro CarTelemetry codec against the Apache Avro C library (Debian libavro-dev) on
// the same record and schema: a codec of our own is worth keeping only if it is measurably faster than avro-c
// (and round-trips against it: tests/unit/codec/avro_c_interop_test.cc). Field lookups by name are resolved
// once, outside the loop, so avro-c is measured at its best.
#include <avro.h>
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <vector>

#include "codec/avro.h"
#include "core/signals.h"
#include "core/telemetry.h"

using namespace fleettwin;

namespace {

core::Telemetry sample() {
  core::Telemetry t;
  t.car = "car-00042";
  t.ts = 1'795'000'000'123;
  t.seq = 4711;
  t.lat = 48.137154;
  t.lon = 11.576124;
  for (std::size_t i = 0; i < core::kSignalCount; ++i) {
    const auto& s = core::kSignals[i];
    t.values[i] = s.type == core::SignalType::kInt ? 31 : s.min + (s.max - s.min) * 0.3141592653589793;
  }
  return t;
}

/// An avro-c generic value of CarTelemetry with its fields resolved once.
struct AvroC {
  avro_schema_t schema{};
  avro_value_iface_t* iface = nullptr;
  avro_value_t value{};
  std::array<avro_value_t, 5 + core::kSignalCount> fields{};
  AvroC() {
    const auto& text = codec::car_telemetry_schema();
    if (avro_schema_from_json_length(text.data(), text.size(), &schema) != 0) std::abort();
    iface = avro_generic_class_from_schema(schema);
    avro_generic_value_new(iface, &value);
    const char* names[5] = {"car", "ts", "seq", "lat", "lon"};
    for (int i = 0; i < 5; ++i) avro_value_get_by_name(&value, names[i], &fields[i], nullptr);
    for (std::size_t i = 0; i < core::kSignalCount; ++i)
      avro_value_get_by_name(&value, std::string(core::kSignals[i].name).c_str(), &fields[5 + i], nullptr);
  }
  ~AvroC() {
    avro_value_decref(&value);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
  }
  void set(const core::Telemetry& t) {
    avro_value_set_string_len(&fields[0], t.car.c_str(), t.car.size() + 1);
    avro_value_set_long(&fields[1], t.ts);
    avro_value_set_long(&fields[2], t.seq);
    // Position and signals are unions of null and the value: branch 1 for a value (the sample has them all).
    avro_value_t b;
    avro_value_set_branch(&fields[3], 1, &b);
    avro_value_set_double(&b, t.lat);
    avro_value_set_branch(&fields[4], 1, &b);
    avro_value_set_double(&b, t.lon);
    for (std::size_t i = 0; i < core::kSignalCount; ++i) {
      avro_value_set_branch(&fields[5 + i], 1, &b);
      if (core::kSignals[i].type == core::SignalType::kInt) {
        avro_value_set_long(&b, static_cast<int64_t>(t.values[i]));
      } else {
        avro_value_set_double(&b, t.values[i]);
      }
    }
  }
};

void BM_Encode_fleettwin(benchmark::State& state) {
  const auto t = sample();
  std::string out;
  for (auto _ : state) {
    out.clear();
    codec::encode_avro_telemetry(t, 1, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Encode_fleettwin);

void BM_Encode_avro_c(benchmark::State& state) {
  const auto t = sample();
  AvroC c;
  std::vector<char> buf(1024);
  for (auto _ : state) {
    c.set(t);
    avro_writer_t w = avro_writer_memory(buf.data(), static_cast<int64_t>(buf.size()));
    avro_value_write(w, &c.value);
    benchmark::DoNotOptimize(avro_writer_tell(w));
    avro_writer_free(w);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Encode_avro_c);

void BM_Decode_fleettwin(benchmark::State& state) {
  std::string bytes;
  codec::encode_avro_telemetry(sample(), 1, bytes);
  core::Telemetry t;
  for (auto _ : state) {
    codec::decode_avro_telemetry(bytes, t, nullptr, nullptr);
    benchmark::DoNotOptimize(t.values.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decode_fleettwin);

void BM_Decode_avro_c(benchmark::State& state) {
  std::string bytes;
  codec::encode_avro_telemetry(sample(), 1, bytes);
  AvroC c;
  core::Telemetry t;
  for (auto _ : state) {
    avro_reader_t r = avro_reader_memory(bytes.data() + codec::kConfluentHeaderSize,
                                         static_cast<int64_t>(bytes.size() - codec::kConfluentHeaderSize));
    avro_value_read(r, &c.value);
    avro_reader_free(r);
    const char* car = nullptr;
    size_t len = 0;
    avro_value_get_string(&c.fields[0], &car, &len);
    t.car.assign(car, len ? len - 1 : 0);
    avro_value_get_long(&c.fields[1], &t.ts);
    avro_value_get_long(&c.fields[2], &t.seq);
    avro_value_t b;
    avro_value_get_current_branch(&c.fields[3], &b);
    avro_value_get_double(&b, &t.lat);
    avro_value_get_current_branch(&c.fields[4], &b);
    avro_value_get_double(&b, &t.lon);
    for (std::size_t i = 0; i < core::kSignalCount; ++i) {
      avro_value_get_current_branch(&c.fields[5 + i], &b);
      if (core::kSignals[i].type == core::SignalType::kInt) {
        int64_t v = 0;
        avro_value_get_long(&b, &v);
        t.values[i] = static_cast<double>(v);
      } else {
        avro_value_get_double(&b, &t.values[i]);
      }
    }
    benchmark::DoNotOptimize(t.values.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decode_avro_c);

}  // namespace
