// Avro CarTelemetry in the Confluent wire format (src/codec/avro.h TelemetryAvro::decode): every record of
// fleet.telemetry. An accepted record encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/avro.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  core::Telemetry t;
  int32_t id = 0;
  std::string error;
  if (!codec::decode_avro_telemetry(in, t, &id, &error)) {
    FUZZ_CHECK(!error.empty(), "a refusal without a reason");
    return 0;
  }
  std::string encoded;
  codec::encode_avro_telemetry(t, id, encoded);
  core::Telemetry back;
  FUZZ_CHECK(codec::decode_avro_telemetry(encoded, back, nullptr, &error), error);
  std::string again;
  codec::encode_avro_telemetry(back, id, again);
  FUZZ_CHECK(again == encoded, "encode(decode(encode(t))) != encode(t)");
  return 0;
}
