// Window aggregates: GET /api/v1/aggregates/{name}, the stored windows of one aggregate, of one car or group
// or of every group, over a range of window starts.
#include <algorithm>

#include "api/aggregate_view.h"
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "core/clock.h"
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

/// A fleet-wide total reads at most this many groups' windows per window start, and this many rows in all:
/// a request costs the same at 100,000 cars over a year as at ten cars over an hour.
constexpr std::size_t kMaxTotalGroups = 200'000;
constexpr std::size_t kMaxTotalRows = 2'000'000;
constexpr int64_t kDefaultTotalRange = int64_t{3} * 3'600'000;

/// GET /api/v1/aggregates/{name}/total: per window start, the windows of every group summed (groups and
/// events), so the overview's fleet-wide chart reads one point per window however many cars there are.
/// Ranges longer than `points` windows are downsampled (every k-th window start, read whole), not cut off.
void total_aggregate(ApiContext& ctx, const httplib::Request& req, httplib::Response& res,
                     const std::string& name) {
  if (!valid_aggregate_name(name)) throw ApiError(400, "aggregate: expected [a-z0-9_]{1,64}");
  const aggregate::Definition* def = definition(ctx, name);
  // The windows' advance comes from the definition: a process that does not know it cannot align them.
  if (def == nullptr) throw ApiError(404, "no aggregate '" + name + "'");
  const int64_t to = int_param(req, "to", core::wall_clock_ms(), 1, INT64_MAX / 2);
  const int64_t from =
      int_param(req, "from", std::max<int64_t>(0, to - kDefaultTotalRange), 0, INT64_MAX / 2);
  if (from >= to) throw ApiError(400, "from must be before to");
  const auto points = static_cast<std::size_t>(int_param(req, "points", 300, 1, 1000));
  int64_t stride = 1;
  const auto starts = total_window_starts(*def, from, to, points, &stride);
  auto store = ctx.stores.acquire();
  std::vector<WindowTotal> totals;
  std::size_t read = 0;
  bool truncated = false;
  for (const int64_t start : starts) {
    if (read >= kMaxTotalRows) {
      truncated = true;
      break;
    }
    store::AggregateQuery q;
    q.aggregate = name;
    q.from_ms = start;
    q.to_ms = start + 1;
    q.limit = std::min(kMaxTotalGroups, kMaxTotalRows - read) + 1;
    auto rows = store->aggregates(q);
    if (rows.size() >= q.limit) {
      truncated = true;
      rows.pop_back();
    }
    read += rows.size();
    WindowTotal t{.start = start, .end = start + def->size_ms};
    add_to_total(*def, rows, t);
    if (t.groups > 0) totals.push_back(t);
  }
  send_json(res, totals_to_json(*def, stride, totals, truncated));
}

}  // namespace

void add_aggregate_routes(Router& router, ApiContext& ctx) {
  router.add(
      "GET", "/api/v1/aggregates/{name}", Role::kViewer,
      [&ctx](const httplib::Request& req, auto& res, const auto& p) { list_aggregate(ctx, req, res, p[0]); });
  router.add("GET", "/api/v1/aggregates/{name}/total", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, const auto& p) {
               total_aggregate(ctx, req, res, p[0]);
             });
}

}  // namespace fleettwin::api
