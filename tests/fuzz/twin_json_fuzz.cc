// Twin documents (src/codec/json.h twin_from_json, twin_pending_from_json): what the sink and the API read
// back from fleet.twins and the stores. An accepted document is written and read again: writing is
// idempotent from then on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/json.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  std::string error;
  core::TwinPending pending;
  (void)codec::twin_pending_from_json(json, pending, &error);
  core::Twin twin;
  if (!codec::twin_from_json(json, twin, &error)) return 0;
  const std::string once = codec::twin_to_json(twin);
  core::Twin back;
  FUZZ_CHECK(codec::twin_from_json(once, back, &error), once + ": " + error);
  const std::string twice = codec::twin_to_json(back);
  FUZZ_CHECK(twice == once, once + " -> " + twice);
  return 0;
}
