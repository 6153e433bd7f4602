// JSON telemetry (src/codec/json.h TelemetryDecoder): every payload a car publishes. A payload the decoder
// accepts is encoded and decoded again: the encoder's output must always be accepted, to the same values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/json.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static codec::TelemetryDecoder drop(codec::kDefaultMaxPayloadBytes, catalog::builtin(),
                                      codec::UnknownFields::kDrop);
  static codec::TelemetryDecoder reject(codec::kDefaultMaxPayloadBytes, catalog::builtin(),
                                        codec::UnknownFields::kReject);
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  core::Telemetry t;
  codec::DecodeError error;
  (void)reject.decode(json, t, error);
  if (!drop.decode(json, t, error)) {
    FUZZ_CHECK(!codec::to_string(error.reason).empty(), "a refusal without a reason");
    return 0;
  }
  std::string encoded;
  codec::encode_json(t, encoded);
  core::Telemetry back;
  FUZZ_CHECK(drop.decode(encoded, back, error), encoded + ": " + error.detail);
  std::string again;
  codec::encode_json(back, again);
  FUZZ_CHECK(again == encoded, encoded + " -> " + again);
  return 0;
}
