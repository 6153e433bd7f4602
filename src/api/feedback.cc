#include "api/feedback.h"

#include <simdjson.h>

#include <set>

#include "api/settings.h"
#include "codec/json_writer.h"

namespace fleettwin::api {

AlertFeedback parse_alert_feedback(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc) || !doc.is_object())
    throw ApiError(400,
                   "body: expected a JSON object, e.g. {\"label\": \"confirmed\", \"note\": \"worn pump\"}");
  AlertFeedback out;
  bool has_label = false;
  std::set<std::string_view> seen;
  for (auto [key, value] : doc.get_object()) {
    // A key twice would leave which one counts to the parser: refused, as settings bodies refuse it.
    if (!seen.insert(key).second) throw ApiError(400, "'" + std::string(key) + "' given twice");
    if (key == "label") {
      std::string_view label;
      if (value.get_string().get(label) ||
          (label != core::kFeedbackConfirmed && label != core::kFeedbackFalse))
        throw ApiError(400, "label: expected \"confirmed\" or \"false\"");
      out.label = std::string(label);
      has_label = true;
    } else if (key == "note") {
      if (value.is_null()) continue;
      std::string_view note;
      if (value.get_string().get(note)) throw ApiError(400, "note: expected a string");
      if (note.size() > core::kMaxFeedbackNote)
        throw ApiError(400, "note: longer than " + std::to_string(core::kMaxFeedbackNote) + " bytes");
      out.note = std::string(note);
    } else {
      // Bounded input: the key is cut so an error message never echoes a megabyte back.
      throw ApiError(400, "unknown key '" + std::string(key.substr(0, 64)) + "' (label, note)");
    }
  }
  if (!has_label) throw ApiError(400, "label: missing (\"confirmed\" or \"false\")");
  return out;
}

std::string feedback_counts_json(const std::string& model_version, const core::FeedbackCounts& counts) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("model_version").string(model_version);
  w.key("confirmed").integer(counts.confirmed).key("false").integer(counts.false_alarms).key("precision");
  const int64_t labelled = counts.confirmed + counts.false_alarms;
  if (labelled == 0)
    w.null();
  else
    w.number(static_cast<double>(counts.confirmed) / static_cast<double>(labelled));
  w.end_object();
  return out;
}

}  // namespace fleettwin::api
