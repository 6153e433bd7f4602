// CSV replay (src/sim/csv_replay.h CsvReplay, parse_time_ms): a recorded file given to `up --replay`. Reads
// every row; a bad row is skipped as the replay loop does, a bad header ends it.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sim/csv_replay.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)sim::parse_time_ms(text);
  std::istringstream in(text);
  sim::CsvReplay replay(in);
  core::Telemetry t;
  std::size_t last_line = 0;
  for (;;) {
    const auto status = replay.next(t);
    if (status == sim::CsvReplay::Status::kEnd) break;
    if (status == sim::CsvReplay::Status::kError) {
      FUZZ_CHECK(!replay.error().message.empty(), "an error without a message");
      (void)replay.error().to_string();
      // The header's error is final; a row's lets the replay go on with the next line.
      if (replay.line() <= 1 || replay.line() == last_line) break;
    }
    FUZZ_CHECK(replay.line() > last_line, "no progress");
    last_line = replay.line();
  }
  return 0;
}
