#pragma once

#include <httplib.h>

#include <functional>
#include <string>
#include <vector>

#include "api/api_server.h"
#include "api/auth.h"

namespace fleettwin::api {

/// The path parameters of a request, in template order ("/twins/{car}" -> {car}).
using PathParams = std::vector<std::string>;

/// A route handler: the request, the response, and the path parameters.
using Handler = std::function<void(const httplib::Request&, httplib::Response&, const PathParams&)>;

/// Registers routes on an httplib server: turns the OpenAPI path template into httplib's pattern, checks
/// the token's role before the handler runs, and turns exceptions into JSON error bodies (ApiError: its
/// status; a bad filter: 400 with its position; anything else: 500). Used at start-up by one thread; the
/// handlers it installs run on httplib's workers and read only the token table, which must outlive the
/// server (the router itself need not).
class Router {
 public:
  Router(httplib::Server& http, const TokenTable& tokens) : _http(http), _tokens(tokens) {}

  /// Serves `method` ("GET", "POST" or "PATCH") on `path`, for tokens with at least `role`. Routes outside
  /// /api/ and the OpenAPI document need no token.
  void add(const std::string& method, const std::string& path, Role role, Handler handler);

  /// Every route added, in order.
  const std::vector<RouteInfo>& routes() const { return _routes; }

 private:
  httplib::Server& _http;
  const TokenTable& _tokens;
  std::vector<RouteInfo> _routes;
};

}  // namespace fleettwin::api
