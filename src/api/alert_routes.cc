// Alerts: newest first, filtered by status, car and kind; acknowledging one (operator).
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "codec/json.h"

namespace fleettwin::api {

namespace {

void list_alerts(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const std::string status = query(req, "status").value_or("all");
  if (status != "all" && status != "open" && status != "acknowledged" && status != "cleared")
    throw ApiError(400, "status: expected all, open, acknowledged or cleared");
  const std::string car = query(req, "car").value_or("");
  const std::string kind = query(req, "kind").value_or("");
  const int64_t limit = int_param(req, "limit", 200, 1, 10000);
  // Read more than asked: the status and kind filters apply after the store's newest-first read.
  auto alerts = ctx.stores.acquire()->alerts(car, status == "all" && kind.empty() ? limit : limit * 10);
  std::string out = "{\"items\":[";
  int64_t n = 0;
  for (const auto& a : alerts) {
    if (n == limit) break;
    if (!kind.empty() && a.kind != kind) continue;
    if (status == "open" && (!a.raised || a.acknowledged)) continue;
    if (status == "acknowledged" && !a.acknowledged) continue;
    if (status == "cleared" && a.raised) continue;
    out += (n++ ? "," : "") + codec::alert_to_json(a);
  }
  send_json(res, out + "]}");
}

void ack_alert(ApiContext& ctx, httplib::Response& res, const std::string& id) {
  auto s = ctx.stores.acquire();
  if (!s->ack_alert(id)) throw ApiError(404, "no alert '" + id + "'");
  auto a = s->get_alert(id);
  if (a) ctx.hub.publish("alert", codec::alert_to_json(*a));
  send_json(res, a ? codec::alert_to_json(*a) : "{}");
}

}  // namespace

void add_alert_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/alerts", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, auto&) { list_alerts(ctx, req, res); });
  router.add("POST", "/api/v1/alerts/{id}/ack", Role::kOperator,
             [&ctx](auto&, auto& res, const auto& p) { ack_alert(ctx, res, p[0]); });
}

}  // namespace fleettwin::api
