// Alert feedback bodies (src/api/feedback.h parse_alert_feedback): POST /api/v1/alerts/{id}/feedback. Only
// ApiError(400) may come out, and what is accepted is a known label with a bounded note.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/feedback.h"
#include "api/settings.h"
#include "fuzz_check.h"

using namespace fleettwin;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    const api::AlertFeedback f = api::parse_alert_feedback(body);
    FUZZ_CHECK(f.label == core::kFeedbackConfirmed || f.label == core::kFeedbackFalse, f.label);
    FUZZ_CHECK(f.note.size() <= core::kMaxFeedbackNote, f.note);
  } catch (const api::ApiError& e) {
    FUZZ_CHECK(e.status == 400, e.what());
  }
  return 0;
}
