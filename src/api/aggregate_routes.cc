// Window aggregates: GET /api/v1/aggregates/{name}, the stored windows of one aggregate, of one car or group
// or of every group, over a range of window starts.
#include <algorithm>

#include "api/aggregate_view.h"
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "core/signals.h"

namespace fleettwin::api {

namespace {

/// Windows one request returns at most: a year of hourly windows of one car is 8,760.
constexpr int64_t kMaxAggregateWindows = 10000;

/// The definition named `name`, null when the process has none of that name.
const aggregate::Definition* definition(const ApiContext& ctx, const std::string& name) {
  for (const auto& d : ctx.options.aggregates)
    if (d.name == name) return &d;
  return nullptr;
}

void list_aggregate(ApiContext& ctx, const httplib::Request& req, httplib::Response& res,
                    const std::string& name) {
  if (!valid_aggregate_name(name)) throw ApiError(400, "aggregate: expected [a-z0-9_]{1,64}");
  const aggregate::Definition* def = definition(ctx, name);
  // With definitions configured an unknown name is a mistake worth a 404; without (a process that does not
  // know them), whatever the store holds under the name is served.
  if (def == nullptr && !ctx.options.aggregates.empty()) throw ApiError(404, "no aggregate '" + name + "'");
  store::AggregateQuery q;
  q.aggregate = name;
  q.group = query(req, "car").value_or("");
  if (!q.group.empty() && q.group != "fleet" && !core::valid_car_id(q.group))
    throw ApiError(400, "car: bad car id '" + q.group.substr(0, 64) + "'");
  q.from_ms = int_param(req, "from", 0, 0, INT64_MAX / 2);
  q.to_ms = int_param(req, "to", INT64_MAX / 2, 0, INT64_MAX / 2);
  if (q.from_ms >= q.to_ms) throw ApiError(400, "from must be before to");
  const int64_t limit = int_param(req, "limit", kMaxAggregateWindows, 1, kMaxAggregateWindows);
  q.limit = static_cast<std::size_t>(limit);
  const auto rows = ctx.stores.acquire()->aggregates(q);
  send_json(res, aggregates_to_json(name, aggregate_columns(def, rows), rows,
                                    static_cast<int64_t>(rows.size()) == limit));
}

}  // namespace

void add_aggregate_routes(Router& router, ApiContext& ctx) {
  router.add(
      "GET", "/api/v1/aggregates/{name}", Role::kViewer,
      [&ctx](const httplib::Request& req, auto& res, const auto& p) { list_aggregate(ctx, req, res, p[0]); });
}

}  // namespace fleettwin::api
