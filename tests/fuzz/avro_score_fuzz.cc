// Avro AnomalyScore in the Confluent wire format (src/codec/schemas.h decode_avro_anomaly_score): every
// record of fleet.scores, as the twin and aggregate stages read it, including records written before in_alert
// existed (they end after model_version, and read as not in alert). An accepted record encodes back to bytes
// that decode to the same and encode to the same bytes again; the in_alert byte is read at most once.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/schemas.h"
#include "fuzz_check.h"

using namespace fleettwin;

namespace {

/// Equal, taking NaN scores as equal to themselves (a NaN read back is still a NaN).
bool same(const codec::AnomalyScore& a, const codec::AnomalyScore& b) {
  auto eq = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  if (a.car != b.car || a.ts != b.ts || a.seq != b.seq || !eq(a.score, b.score) ||
      !eq(a.threshold, b.threshold) || a.model_version != b.model_version || a.in_alert != b.in_alert ||
      a.top_signals.size() != b.top_signals.size())
    return false;
  for (std::size_t i = 0; i < a.top_signals.size(); ++i)
    if (a.top_signals[i].signal != b.top_signals[i].signal ||
        !eq(a.top_signals[i].deviation, b.top_signals[i].deviation))
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  codec::AnomalyScore s;
  int32_t id = 0;
  std::string error;
  if (!codec::decode_avro_anomaly_score(in, s, &id, &error)) {
    FUZZ_CHECK(!error.empty(), "a refusal without a reason");
    return 0;
  }
  std::string encoded;
  codec::encode_avro_anomaly_score(s, id, encoded);
  // A record of the older schema (it ends after model_version) with a true in_alert byte appended is the same
  // record in alert; a record that had the byte refuses another one.
  codec::AnomalyScore longer;
  if (codec::decode_avro_anomaly_score(std::string(in) + '\x01', longer, nullptr, &error)) {
    FUZZ_CHECK(!s.in_alert && longer.in_alert, "a second in_alert byte was read");
    longer.in_alert = false;
    FUZZ_CHECK(same(longer, s), "the appended in_alert byte changed another field");
  }
  codec::AnomalyScore back;
  FUZZ_CHECK(codec::decode_avro_anomaly_score(encoded, back, nullptr, &error), error);
  FUZZ_CHECK(same(back, s), "decode(encode(s)) != s");
  std::string again;
  codec::encode_avro_anomaly_score(back, id, again);
  FUZZ_CHECK(again == encoded, "encode(decode(encode(s))) != encode(s)");
  return 0;
}
