// Alerts: newest first, filtered by status, car and kind; acknowledging one and labelling it confirmed or
// false (operator); the labels of one model version's alerts, its live precision.
#include "api/feedback.h"
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "codec/json.h"
#include "core/clock.h"

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

void give_feedback(ApiContext& ctx, const httplib::Request& req, httplib::Response& res,
                   const std::string& id) {
  const AlertFeedback f = parse_alert_feedback(req.body);  // 400 before the store is touched
  auto s = ctx.stores.acquire();
  if (!s->set_alert_feedback(id, f.label, f.note, core::wall_clock_ms()))
    throw ApiError(404, "no alert '" + id + "'");
  auto a = s->get_alert(id);
  // The dashboards of other operators see the label at once, as they see an acknowledgement.
  if (a) ctx.hub.publish("alert", codec::alert_to_json(*a));
  send_json(res, a ? codec::alert_to_json(*a) : "{}");
}

void model_feedback(ApiContext& ctx, httplib::Response& res, const std::string& version) {
  send_json(res, feedback_counts_json(version, ctx.stores.acquire()->feedback_counts(version)));
}

}  // namespace

void add_alert_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/alerts", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, auto&) { list_alerts(ctx, req, res); });
  router.add("POST", "/api/v1/alerts/{id}/ack", Role::kOperator,
             [&ctx](auto&, auto& res, const auto& p) { ack_alert(ctx, res, p[0]); });
  router.add(
      "POST", "/api/v1/alerts/{id}/feedback", Role::kOperator,
      [&ctx](const httplib::Request& req, auto& res, const auto& p) { give_feedback(ctx, req, res, p[0]); });
  router.add("GET", "/api/v1/models/{version}/feedback", Role::kViewer,
             [&ctx](auto&, auto& res, const auto& p) { model_feedback(ctx, res, p[0]); });
}

}  // namespace fleettwin::api
