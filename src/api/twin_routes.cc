// Twins: the filtered, sorted, paged list, one twin, and a car's history downsampled for charting.
#include <algorithm>

#include "api/aggregate_view.h"
#include "api/history.h"
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "codec/json.h"
#include "codec/json_writer.h"
#include "core/clock.h"
#include "store/filter.h"

namespace fleettwin::api {

namespace {

void list_twins(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  store::TwinQuery q;
  q.limit = int_param(req, "limit", 100, 1, 10000);
  if (auto f = query(req, "filter"); f && !f->empty()) q.filter = store::parse_filter(*f, ctx.catalog());
  q.sort = query(req, "sort").value_or("");
  const auto sort = store::parse_sort(q.sort, ctx.catalog());
  q.after_id = query(req, "cursor").value_or("");
  if (!q.after_id.empty()) store::decode_twin_cursor(sort, q.after_id);  // 400 on a bad cursor
  if (auto st = query(req, "status"); st && !st->empty()) {
    if (*st != "ok" && *st != "warning" && *st != "anomaly" && *st != "unknown")
      throw ApiError(400, "status: expected ok, warning, anomaly or unknown");
    q.status = core::health_status_from_string(*st);
  }
  auto twins = ctx.stores.acquire()->list_twins(q);
  std::string out = "{\"items\":[";
  for (std::size_t i = 0; i < twins.size(); ++i) {
    out += (i ? "," : "") + codec::twin_to_json(twins[i], ctx.catalog());
  }
  out += "],\"next_cursor\":";
  if (static_cast<int64_t>(twins.size()) == q.limit) {
    codec::append_json_string(out, store::twin_cursor(sort, twins.back()));
  } else {
    out += "null";
  }
  send_json(res, out + "}");
}

/// Signals one history request may ask for: each is a column of every point, so the answer's size grows
/// with the count; a chart shows a handful.
constexpr std::size_t kMaxHistorySignals = 32;

/// The catalog indexes of the signals named in `?signal=a,b` (any name, field or alias; default speed, or the
/// catalog's first signal when it has no speed); 400 for an unknown name, a signal named twice (by any of
/// its names) or more than kMaxHistorySignals.
std::vector<std::size_t> requested_signals(const catalog::Catalog& catalog, const httplib::Request& req) {
  std::vector<std::size_t> signals;
  const std::string fallback = catalog.find("speed") || catalog.size() == 0 ? "speed" : catalog[0].name;
  const std::string names = query(req, "signal").value_or(fallback);
  for (std::size_t pos = 0; pos <= names.size();) {
    const auto comma = std::min(names.find(',', pos), names.size());
    const std::string name = names.substr(pos, comma - pos);
    pos = comma + 1;
    if (name.empty()) continue;
    const auto idx = catalog.find(name);
    if (!idx) throw ApiError(400, "signal: unknown signal '" + name + "'");
    if (std::find(signals.begin(), signals.end(), *idx) != signals.end())
      throw ApiError(400, "signal: '" + name + "' names a signal already requested");
    if (signals.size() == kMaxHistorySignals)
      throw ApiError(400, "signal: at most " + std::to_string(kMaxHistorySignals) + " signals per request");
    signals.push_back(*idx);
  }
  return signals;
}

/// The per-car aggregate that answers a history request instead of the raw rows, or null for the rows.
/// `?source=aggregates` or `history` chooses; by default (`auto`) the aggregates answer a range that ends
/// before the car's last message minus store.history_retention: the sink has removed (or is removing) those
/// rows, since its cutoff is at or after that point (min(now, newest ts stored) - retention).
const aggregate::Definition* fallback_aggregate(const ApiContext& ctx, const httplib::Request& req,
                                                const core::Twin& twin,
                                                const std::vector<std::size_t>& signals, int64_t to) {
  const std::string source = query(req, "source").value_or("auto");
  if (source != "auto" && source != "history" && source != "aggregates")
    throw ApiError(400, "source: expected auto, history or aggregates");
  if (source == "history") return nullptr;
  const aggregate::Definition* def = history_aggregate(ctx.options.aggregates, signals);
  if (source == "aggregates") {
    if (def == nullptr) throw ApiError(404, "source: no per-car aggregate is defined");
    return def;
  }
  const int64_t retention = ctx.options.history_retention_ms;
  if (def == nullptr || retention <= 0 || twin.last_seen <= 0) return nullptr;
  return to <= twin.last_seen - retention ? def : nullptr;
}

void history(ApiContext& ctx, const httplib::Request& req, httplib::Response& res, const std::string& car) {
  auto s = ctx.stores.acquire();
  const auto twin = twin_or_404(*s, car);
  const auto signals = requested_signals(ctx.catalog(), req);
  // Default window: the hour before the car's last message (device time; a fast simulation runs ahead of
  // the wall clock, so "now" would show nothing).
  const int64_t last = twin.last_seen > 0 ? twin.last_seen + 1 : core::wall_clock_ms();
  const int64_t to = int_param(req, "to", last, 0, INT64_MAX / 2);
  const int64_t from = int_param(req, "from", to - 3600000, 0, INT64_MAX / 2);
  if (from >= to) throw ApiError(400, "from must be before to");
  const int64_t step = int_param(req, "step", auto_step(from, to, 600), 1, INT64_MAX / 2);
  if ((to - from) / step > 100000) throw ApiError(400, "step too small: at most 100000 points");
  std::string out;
  if (const aggregate::Definition* def = fallback_aggregate(ctx, req, twin, signals, to)) {
    out = aggregate_series_json(
        *def,
        s->aggregates({.aggregate = def->name, .group = car, .from_ms = from, .to_ms = to, .limit = 20000}),
        signals, ctx.catalog(), from, to);
  } else {
    const auto rows = s->history(car, from, to, 200000);
    out = series_to_json(downsample(rows, signals, from, to, step), ctx.catalog());
    out.pop_back();
    out += ",\"source\":\"history\"";
  }
  out += ",\"car\":";
  codec::append_json_string(out, car);
  out += ",\"threshold\":";
  codec::append_json_double(out, twin.health.threshold);
  out += ",\"alerts\":[";
  bool first = true;
  for (const auto& a : s->alerts(car, 1000)) {
    if (a.ts < from || a.ts >= to) continue;
    out += (first ? "" : ",") + codec::alert_to_json(a);
    first = false;
  }
  send_json(res, out + "]}");
}

}  // namespace

void add_twin_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/twins", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, auto&) { list_twins(ctx, req, res); });
  router.add("GET", "/api/v1/twins/{car}", Role::kViewer, [&ctx](auto&, auto& res, const auto& p) {
    send_json(res, codec::twin_to_json(twin_or_404(*ctx.stores.acquire(), p[0]), ctx.catalog()));
  });
  router.add("GET", "/api/v1/twins/{car}/history", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, const auto& p) { history(ctx, req, res, p[0]); });
}

}  // namespace fleettwin::api
