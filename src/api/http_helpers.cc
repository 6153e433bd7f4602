#include "api/http_helpers.h"

#include <charconv>

#include "api/settings.h"
#include "codec/json_writer.h"
#include "core/clock.h"
#include "core/tokens.h"

namespace fleettwin::api {

std::string error_json(std::string_view message, std::optional<std::size_t> position) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("error").string(message);
  if (position) w.key("position").integer(static_cast<int64_t>(*position));
  w.end_object();
  return out;
}

void send_json(httplib::Response& res, const std::string& body, int status) {
  res.status = status;
  res.set_content(body, "application/json");
}

std::optional<std::string> query(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

int64_t int_param(const httplib::Request& req, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const auto text = query(req, name);
  if (!text || text->empty()) return fallback;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size() || v < lo || v > hi)
    throw ApiError(400, std::string(name) + ": expected an integer " + std::to_string(lo) + ".." +
                            std::to_string(hi) + ", got '" + *text + "'");
  return v;
}

std::string request_token(const httplib::Request& req) {
  const auto auth = req.get_header_value("Authorization");
  if (const auto bearer = core::bearer_token(auth); !bearer.empty()) return std::string(bearer);
  if (req.has_param("token")) return req.get_param_value("token");
  const auto cookie = req.get_header_value("Cookie");
  const std::string key = "fleettwin_token=";
  for (std::size_t pos = 0; (pos = cookie.find(key, pos)) != std::string::npos; pos += key.size()) {
    if (pos > 0 && cookie[pos - 1] != ' ' && cookie[pos - 1] != ';') continue;
    const auto start = pos + key.size();
    return cookie.substr(start, cookie.find(';', start) - start);
  }
  return "";
}

}  // namespace fleettwin::api
