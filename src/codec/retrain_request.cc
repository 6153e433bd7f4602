#include "codec/retrain_request.h"

#include <simdjson.h>

#include "codec/json_writer.h"

namespace fleettwin::codec {

namespace {

bool fail(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

/// Cuts `s` to at most `n` bytes without splitting a UTF-8 sequence (the detail is shown as JSON text).
std::string cut_utf8(std::string_view s, std::size_t n) {
  if (s.size() <= n) return std::string(s);
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

}  // namespace

bool parse_retrain_request(std::string_view json, RetrainRequest& out, std::string* error) {
  if (json.size() > kMaxRetrainRequestBytes) return fail(error, "retrain request larger than 8 KiB");
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::object doc;
  if (parser.parse(padded).get_object().get(doc) != simdjson::SUCCESS)
    return fail(error, "retrain request is not a JSON object");
  std::string_view reason;
  if (doc["reason"].get_string().get(reason) != simdjson::SUCCESS)
    return fail(error, "retrain request: \"reason\" must be a string");
  if (reason != "drift" && reason != "api" && reason != "schedule")
    return fail(error, "retrain request: \"reason\" must be drift, api or schedule");
  int64_t ts = 0;
  if (doc["ts"].get_int64().get(ts) != simdjson::SUCCESS || ts < 0)
    return fail(error, "retrain request: \"ts\" must be a non-negative integer (ms since the epoch)");
  RetrainRequest r;
  r.reason = std::string(reason);
  r.ts = ts;
  if (simdjson::dom::element detail; doc["detail"].get(detail) == simdjson::SUCCESS) {
    std::string_view text;
    if (detail.get_string().get(text) == simdjson::SUCCESS)
      r.detail = cut_utf8(text, kMaxRetrainDetail);
    else if (!detail.is_null())
      r.detail = cut_utf8(simdjson::minify(detail), kMaxRetrainDetail);
  }
  out = std::move(r);
  return true;
}

std::string retrain_request_to_json(const RetrainRequest& r) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("reason").string(r.reason).key("detail").string(r.detail).key("ts").integer(r.ts);
  w.end_object();
  return out;
}

}  // namespace fleettwin::codec
