// Fleet-wide views: the summary tiles, the throughput samples of the last minutes and every car's position
// for the map.

#include <algorithm>

#include "api/http_helpers.h"
#include "api/routes.h"
#include "codec/json.h"
#include "codec/json_writer.h"
#include "core/clock.h"
#include "core/enum_names.h"
#include "core/metric_catalog.h"

namespace fleettwin::api {

namespace {

using SteadyClock = std::chrono::steady_clock;

/// The map's status column: 0 unknown, 1 ok, 2 warning, 3 anomaly (as docs/openapi.yaml says).
constexpr core::EnumName<core::HealthStatus> kStatusCodes[] = {{core::HealthStatus::kUnknown, "0"},
                                                               {core::HealthStatus::kOk, "1"},
                                                               {core::HealthStatus::kWarning, "2"},
                                                               {core::HealthStatus::kAnomaly, "3"}};

std::string_view status_code(core::HealthStatus s) { return core::name_of(kStatusCodes, s, "0"); }

void summary(ApiContext& ctx, httplib::Response& res) {
  auto s = ctx.stores.acquire();
  const auto sum = s->fleet_summary(core::wall_clock_ms());
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("cars").integer(sum.cars).key("online").integer(sum.online);
  w.key("by_status").begin_object();
  for (const char* st : {"ok", "warning", "anomaly", "unknown"}) {
    auto it = sum.by_status.find(st);
    w.key(st).integer(it == sum.by_status.end() ? 0 : it->second);
  }
  w.end_object().key("messages_last_minute").integer(sum.messages_last_minute);
  w.key("throughput").raw(sample_json(ctx.throughput.latest()));
  w.key("top").begin_array();
  for (const auto& c : s->top_by_score(10))
    w.begin_object()
        .key("car")
        .string(c.car)
        .key("score")
        .number(c.score)
        .key("threshold")
        .number(c.threshold)
        .key("status")
        .string(c.status)
        .end_object();
  w.end_array();
  // An edge site (`up --uplink`): how its replication to central stands, for the overview's badge.
  if (const core::Metrics* m = ctx.options.metrics; m && m->value(core::metric::kUplinkEnabled) == 1) {
    static constexpr const char* kStates[] = {"live", "spooling", "full"};
    const auto state = std::clamp<int64_t>(m->value(core::metric::kUplinkState), 0, 2);
    w.key("uplink").begin_object().key("state").string(kStates[state]);
    w.key("spool_bytes").integer(m->value(core::metric::kUplinkSpoolBytes)).end_object();
  }
  w.end_object();
  send_json(res, out);
}

/// Every twin's position and health as JSON columns, read a page of 10,000 at a time.
std::string positions_json(store::TwinStore& s) {
  std::string ids, lat, lon, status, online;
  store::TwinQuery q;
  q.limit = 10000;
  for (;;) {
    auto page = s.list_twins(q);
    for (const auto& t : page) {
      const char* sep = ids.empty() ? "" : ",";
      ids += sep;
      codec::append_json_string(ids, t.id);
      lat += sep;
      codec::append_json_double(lat, t.reported.lat);
      lon += sep;
      codec::append_json_double(lon, t.reported.lon);
      status += sep;
      status += status_code(t.health.status);
      online += sep;
      online += t.online ? "1" : "0";
    }
    if (static_cast<int64_t>(page.size()) < q.limit) break;
    q.after_id = page.back().id;
  }
  return "{\"ids\":[" + ids + "],\"lat\":[" + lat + "],\"lon\":[" + lon + "],\"status\":[" + status +
         "],\"online\":[" + online + "]}";
}

void positions(ApiContext& ctx, httplib::Response& res) {
  // Cached for 2 s: a 100,000-car listing takes a while, and every dashboard polls it.
  auto& cache = ctx.positions;
  std::lock_guard lock(cache.mu);
  if (cache.json.empty() || SteadyClock::now() - cache.built > std::chrono::seconds(2)) {
    cache.json = positions_json(*ctx.stores.acquire());
    cache.built = SteadyClock::now();
  }
  send_json(res, cache.json);
}

}  // namespace

void add_fleet_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/fleet/summary", Role::kViewer,
             [&ctx](auto&, auto& res, auto&) { summary(ctx, res); });
  router.add("GET", "/api/v1/fleet/throughput", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, auto&) {
               const int64_t seconds = int_param(req, "seconds", 300, 1, 600);
               send_json(res,
                         "{\"items\":" + ctx.throughput.last_json(static_cast<std::size_t>(seconds)) + "}");
             });
  router.add("GET", "/api/v1/fleet/positions", Role::kViewer,
             [&ctx](auto&, auto& res, auto&) { positions(ctx, res); });
}

}  // namespace fleettwin::api
