// The dashboard's static files at /, and JSON bodies for the errors httplib answers itself.
#include <filesystem>

#include "api/http_helpers.h"
#include "api/routes.h"

namespace fleettwin::api {

namespace {

/// What httplib's own error answers mean, for their JSON body: it refuses these before any route runs.
std::string error_text(int status) {
  switch (status) {
    case 400:
      return "malformed HTTP request";
    case 404:
      return "no such route";
    case 413:
      return "request body too large: the API reads at most " + std::to_string(kMaxRequestBodyBytes) +
             " bytes";
    case 414:
      return "request target (path and query) too long";
    default:
      return "error";
  }
}

}  // namespace

void serve_dashboard(httplib::Server& http, const std::string& web_dir) {
  namespace fs = std::filesystem;
  if (!web_dir.empty() && fs::is_regular_file(fs::path(web_dir) / "index.html")) {
    http.set_mount_point("/", web_dir);
  } else {
    http.Get("/", [web_dir](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<!doctype html><title>fleettwin</title><p>The dashboard is not built" +
              (web_dir.empty() ? std::string() : " (looked in " + web_dir + ")") +
              ". Run <code>scripts/build</code>, which builds <code>web/</code> with npm. The REST "
              "API is at <a href=\"/api/v1/openapi.yaml\">/api/v1</a>.</p>",
          "text/html");
    });
  }
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) res.set_content(error_json(error_text(res.status)), "application/json");
  });
}

}  // namespace fleettwin::api
