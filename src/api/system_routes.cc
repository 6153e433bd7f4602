// Liveness, readiness, Prometheus metrics, the OpenAPI document, the token's role and the signal catalog.
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "catalog/catalog.h"
#include "codec/json_writer.h"

namespace fleettwin::api {

namespace {

void readyz(ApiContext& ctx, httplib::Response& res) {
  auto s = ctx.stores.acquire();
  // The store answers: one lookup in the small twins collection. (history_stats would count telemetry,
  // a scan of the whole collection on FerretDB, which also holds back its WAL checkpoints meanwhile.)
  s->get_twin("readyz-probe");
  if (ctx.options.ready && !ctx.options.ready()) throw ApiError(503, "pipeline not ready");
  send_json(res, R"({"status":"ready"})");
}

void metrics(ApiContext& ctx, httplib::Response& res) {
  std::string text = ctx.options.metrics ? ctx.options.metrics->prometheus_text() : "";
  text +=
      "# HELP fleettwin_api_stream_clients Live-stream clients connected\n"
      "# TYPE fleettwin_api_stream_clients gauge\nfleettwin_api_stream_clients " +
      std::to_string(ctx.hub.subscribers()) +
      "\n# HELP fleettwin_api_stream_dropped_total Live-stream clients dropped for reading too slowly\n"
      "# TYPE fleettwin_api_stream_dropped_total counter\nfleettwin_api_stream_dropped_total " +
      std::to_string(ctx.hub.dropped()) +
      "\n# HELP fleettwin_api_stream_queued_bytes Live-stream event bytes waiting to be sent\n"
      "# TYPE fleettwin_api_stream_queued_bytes gauge\nfleettwin_api_stream_queued_bytes " +
      std::to_string(ctx.hub.queued_bytes()) +
      "\n# HELP fleettwin_api_connections HTTP connections held (queued or served)\n"
      "# TYPE fleettwin_api_connections gauge\nfleettwin_api_connections " +
      std::to_string(ctx.connections.open.load()) +
      "\n# HELP fleettwin_api_connections_refused_total Connections answered 503 at accept "
      "(http.max_connections)\n"
      "# TYPE fleettwin_api_connections_refused_total counter\nfleettwin_api_connections_refused_total " +
      std::to_string(ctx.connections.refused.load()) + "\n";
  res.set_content(text, "text/plain; version=0.0.4");
}

void whoami(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  // The router has refused unknown tokens already (401); the same answer here, should one get through.
  const auto role = ctx.options.tokens.role_of(request_token(req));
  if (!role) throw ApiError(401, "unknown API token");
  std::string out;
  codec::JsonWriter(out).begin_object().key("role").string(to_string(*role)).end_object();
  send_json(res, out);
}

/// The signal catalog in use (catalog.file, or the built-in one), so clients such as the dashboard draw
/// their signal lists, units, ranges and parts from the server rather than from a copy.
void catalog_json(const catalog::Catalog& c, httplib::Response& res) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("name").string(c.name()).key("version").number(c.version());
  w.key("label").string(c.label()).key("description").string(c.description());
  w.key("signals").begin_array();
  for (const auto& s : c.signals()) {
    w.begin_object().key("name").string(s.name).key("field").string(s.field);
    w.key("type").string(catalog::to_string(s.type)).key("unit").string(s.unit);
    w.key("min").number(s.min).key("max").number(s.max).key("description").string(s.description);
    w.key("part").string(catalog::to_string(s.part)).key("since").number(s.since);
    w.key("aliases").begin_array();
    for (const auto& a : s.aliases) w.string(a);
    w.end_array().end_object();
  }
  w.end_array().end_object();
  send_json(res, out);
}

}  // namespace

void add_system_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/healthz", Role::kViewer,
             [](auto&, auto& res, auto&) { send_json(res, R"({"status":"ok"})"); });
  router.add("GET", "/readyz", Role::kViewer, [&ctx](auto&, auto& res, auto&) { readyz(ctx, res); });
  router.add("GET", "/metrics", Role::kViewer, [&ctx](auto&, auto& res, auto&) { metrics(ctx, res); });
  router.add("GET", "/api/v1/openapi.yaml", Role::kViewer,
             [](auto&, auto& res, auto&) { res.set_content(ApiServer::openapi_yaml(), "application/yaml"); });
  router.add("GET", "/api/v1/whoami", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, auto&) { whoami(ctx, req, res); });
  router.add("GET", "/api/v1/catalog", Role::kViewer,
             [&ctx](auto&, auto& res, auto&) { catalog_json(ctx.catalog(), res); });
}

}  // namespace fleettwin::api
