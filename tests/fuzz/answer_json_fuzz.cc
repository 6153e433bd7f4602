// Command answers (src/codec/json.h command_ack_from_json): what a car publishes on fleet/{car}/acks. An
// accepted answer is written and read again: writing is idempotent.
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
  core::CommandAck ack;
  if (!codec::command_ack_from_json(json, ack, &error)) return 0;
  const std::string once = codec::command_ack_to_json(ack);
  core::CommandAck back;
  FUZZ_CHECK(codec::command_ack_from_json(once, back, &error), once + ": " + error);
  const std::string twice = codec::command_ack_to_json(back);
  FUZZ_CHECK(twice == once, once + " -> " + twice);
  return 0;
}
