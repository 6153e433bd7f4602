#pragma once

#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleettwin::api {

/// The JSON error body every route answers with: {"error": message} and, for a bad filter, "position".
std::string error_json(std::string_view message, std::optional<std::size_t> position = std::nullopt);

/// Sends `body` as application/json with `status`.
void send_json(httplib::Response& res, const std::string& body, int status = 200);

/// The query parameter `name`, or nullopt when the request has none.
std::optional<std::string> query(const httplib::Request& req, const char* name);

/// The integer query parameter `name` in [lo, hi], `fallback` when absent or empty. Throws ApiError(400)
/// naming the parameter and the accepted range otherwise.
int64_t int_param(const httplib::Request& req, const char* name, int64_t fallback, int64_t lo, int64_t hi);

/// The token of a request: `Authorization: Bearer T`, else `?token=T` (EventSource cannot send headers),
/// else the dashboard's `fleettwin_token` cookie; empty when none.
std::string request_token(const httplib::Request& req);

}  // namespace fleettwin::api
