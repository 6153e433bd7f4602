// Command documents (src/codec/json.h command_from_json, command_settings): fleet.commands as the bridge
// and the twin stage read it. An accepted command is written and read again: writing is idempotent.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "codec/json.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  std::string error;
  core::Command command;
  if (!codec::command_from_json(json, command, &error)) return 0;
  std::map<std::string, std::string> settings;
  (void)codec::command_settings(command, settings, &error);
  const std::string once = codec::command_to_json(command);
  core::Command back;
  FUZZ_CHECK(codec::command_from_json(once, back, &error), once + ": " + error);
  const std::string twice = codec::command_to_json(back);
  FUZZ_CHECK(twice == once, once + " -> " + twice);
  return 0;
}
