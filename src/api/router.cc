#include "api/router.h"

#include <spdlog/spdlog.h>

#include "api/http_helpers.h"
#include "api/settings.h"
#include "store/filter.h"

namespace fleettwin::api {

namespace {

/// "/api/v1/twins/{car}" -> "/api/v1/twins/([^/]+)"
std::string path_pattern(const std::string& path) {
  std::string pattern;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '{') {
      i = path.find('}', i);
      pattern += "([^/]+)";
    } else {
      if (path[i] == '.') pattern += '\\';
      pattern += path[i];
    }
  }
  return pattern;
}

/// Throws ApiError 401 for a missing or unknown token, 403 for a role below `needed`.
void authorize(const TokenTable& tokens, const httplib::Request& req, Role needed) {
  const std::string token = request_token(req);
  if (token.empty()) throw ApiError(401, "missing API token: send Authorization: Bearer <token>");
  const auto role = tokens.role_of(token);
  if (!role) throw ApiError(401, "unknown API token");
  if (static_cast<int>(*role) < static_cast<int>(needed))
    throw ApiError(403, "this needs the " + std::string(to_string(needed)) + " role; the token has " +
                            std::string(to_string(*role)));
}

}  // namespace

void Router::add(const std::string& method, const std::string& path, Role role, Handler handler) {
  _routes.push_back({method, path});
  const bool open = path.rfind("/api/", 0) != 0 || path == "/api/v1/openapi.yaml";
  auto wrapped = [&tokens = _tokens, handler = std::move(handler), role, open](const httplib::Request& req,
                                                                               httplib::Response& res) {
    try {
      if (!open) authorize(tokens, req, role);
      PathParams params;
      for (std::size_t i = 1; i < req.matches.size(); ++i) params.push_back(req.matches[i].str());
      handler(req, res, params);
    } catch (const ApiError& e) {
      send_json(res, error_json(e.what()), e.status);
    } catch (const store::FilterError& e) {
      send_json(res, error_json(e.what(), e.position), 400);
    } catch (const std::exception& e) {
      spdlog::warn("api: {} {}: {}", req.method, req.path, e.what());
      send_json(res, error_json(std::string("internal error: ") + e.what()), 500);
    }
  };
  const std::string pattern = path_pattern(path);
  if (method == "GET")
    _http.Get(pattern, wrapped);
  else if (method == "POST")
    _http.Post(pattern, wrapped);
  else if (method == "PATCH")
    _http.Patch(pattern, wrapped);
}

}  // namespace fleettwin::api
