// Avro AggregateResult in the Confluent wire format (src/codec/schemas.h decode_avro_aggregate_result): every
// record of fleet.aggregates, as the sink reads it. An accepted record encodes back to bytes that decode to
// the same and encode to the same bytes again; an accepted record holds the decoder's bounds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/schemas.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  codec::AggregateResult r;
  int32_t id = 0;
  std::string error;
  if (!codec::decode_avro_aggregate_result(in, r, &id, &error)) {
    FUZZ_CHECK(!error.empty(), "a refusal without a reason");
    return 0;
  }
  FUZZ_CHECK(r.values.size() <= codec::kMaxAggregateColumns && r.window_end > r.window_start &&
                 r.revision >= 1 && r.count >= 0,
             "accepted a record outside the bounds");
  std::string encoded;
  codec::encode_avro_aggregate_result(r, id, encoded);
  codec::AggregateResult back;
  FUZZ_CHECK(codec::decode_avro_aggregate_result(encoded, back, nullptr, &error), error);
  std::string again;
  codec::encode_avro_aggregate_result(back, id, again);
  FUZZ_CHECK(again == encoded, "encode(decode(encode(r))) != encode(r)");
  return 0;
}
