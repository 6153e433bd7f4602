// Settings PATCH bodies (src/api/settings.h commands_for_settings): PATCH /api/v1/twins/{car}/desired. Every
// command made from a body has a valid JSON parameter document.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/settings.h"
#include "codec/json.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  core::Twin twin;
  twin.id = "car-00001";
  twin.desired["speed_limit_kmh"] = "80";
  try {
    for (const core::Command& c : api::commands_for_settings(twin, body, 1764144000000, 1)) {
      FUZZ_CHECK(c.params_json.empty() || codec::valid_json_value(c.params_json), c.params_json);
      std::string error;
      core::Command back;
      FUZZ_CHECK(codec::command_from_json(codec::command_to_json(c), back, &error), error);
    }
  } catch (const api::ApiError& e) {
    FUZZ_CHECK(e.status == 400, e.what());
  }
  return 0;
}
