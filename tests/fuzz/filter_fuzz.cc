// The twin filter language, sorts and paging cursors (src/store/filter.h): the `filter`, `sort` and `after`
// query parameters of GET /api/v1/twins and `fleettwin query twins`. First byte: which parser (and, for
// cursors, which sort); the rest: the text. A parsed filter prints as text that parses back to it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "store/filter.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 4) {
      case 0:
      case 1: {
        const store::Filter filter = store::parse_filter(text);
        const std::string printed = store::to_string(filter);
        try {
          FUZZ_CHECK(store::parse_filter(printed) == filter, printed);
        } catch (const store::FilterError& e) {
          FUZZ_CHECK(false, printed + ": " + e.what());
        }
        break;
      }
      case 2:
        (void)store::parse_sort(text);
        break;
      case 3: {
        static const char* const kSorts[] = {
            "", "-health.score", "reported.speed", "connection.online", "-reported.ts", "health.status"};
        const store::TwinSort sort = store::parse_sort(kSorts[(data[0] >> 2) % 6]);
        (void)store::decode_twin_cursor(sort, text);
        break;
      }
    }
  } catch (const store::FilterError&) {
  }
  return 0;
}
