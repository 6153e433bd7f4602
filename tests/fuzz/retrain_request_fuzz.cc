// Retrain requests (src/codec/retrain_request.h parse_retrain_request): "retrain.request" records on
// fleet.models as the trainer stage reads them. An accepted request is written and read again: the same
// request, and writing it is idempotent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/retrain_request.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  std::string error;
  codec::RetrainRequest r;
  if (!codec::parse_retrain_request(json, r, &error)) return 0;
  FUZZ_CHECK(r.detail.size() <= codec::kMaxRetrainDetail, r.detail);
  const std::string once = codec::retrain_request_to_json(r);
  codec::RetrainRequest back;
  FUZZ_CHECK(codec::parse_retrain_request(once, back, &error), once + ": " + error);
  FUZZ_CHECK(back.reason == r.reason && back.detail == r.detail && back.ts == r.ts, once);
  FUZZ_CHECK(codec::retrain_request_to_json(back) == once, once);
  return 0;
}
