#pragma once

#include <string>
#include <string_view>

#include "core/alert.h"

namespace fleettwin::api {

/// An operator's verdict on an alert, as POST /api/v1/alerts/{id}/feedback carries it. Plain value.
struct AlertFeedback {
  std::string label;  ///< core::kFeedbackConfirmed or core::kFeedbackFalse
  std::string note;   ///< at most core::kMaxFeedbackNote bytes of UTF-8; may be empty
};

/// Reads a feedback body: a JSON object {"label": "confirmed"|"false", "note": "..."} (note optional, a
/// string or null). Throws ApiError(400) naming what is wrong: not an object, a missing or unknown label, a
/// note that is not a string or longer than core::kMaxFeedbackNote, an unknown key, a key given twice.
AlertFeedback parse_alert_feedback(std::string_view body);

/// {"confirmed":n,"false":n,"precision":x|null} for GET /api/v1/models/{version}/feedback: precision is
/// confirmed / (confirmed + false), null before any label.
std::string feedback_counts_json(const std::string& model_version, const core::FeedbackCounts& counts);

}  // namespace fleettwin::api
