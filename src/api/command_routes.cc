// Commands: a car's commands, desired settings (each changed setting becomes a command on fleet.commands)
// and one command with its status.
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"
#include "codec/json.h"
#include "codec/json_writer.h"
#include "core/clock.h"
#include "core/topics.h"

namespace fleettwin::api {

namespace {

void car_commands(ApiContext& ctx, const httplib::Request& req, httplib::Response& res,
                  const std::string& car) {
  auto s = ctx.stores.acquire();
  twin_or_404(*s, car);
  std::string out = "{\"items\":[";
  bool first = true;
  for (const auto& c : s->commands(car, int_param(req, "limit", 50, 1, 1000))) {
    out += (first ? "" : ",") + codec::command_to_json(c);
    first = false;
  }
  send_json(res, out + "]}");
}

void set_desired(ApiContext& ctx, const httplib::Request& req, httplib::Response& res,
                 const std::string& car) {
  const auto twin = twin_or_404(*ctx.stores.acquire(), car);
  if (!ctx.options.log) throw ApiError(503, "no log configured: commands cannot be sent");
  const auto commands =
      commands_for_settings(twin, req.body, core::wall_clock_ms(), ctx.command_sequence.fetch_add(16));
  std::vector<log::OutRecord> records;
  records.reserve(commands.size());
  for (const auto& c : commands)
    records.push_back(log::OutRecord{core::topics::kCommands, c.car, codec::command_to_json(c), {}, -1, 0});
  if (ctx.publish(std::move(records)) > 0)
    throw ApiError(503, "the log did not accept the commands; try again");
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("commands").begin_array();
  for (const auto& c : commands) w.string(c.id);
  w.end_array().end_object();
  send_json(res, out, commands.empty() ? 200 : 202);
}

}  // namespace

void add_command_routes(Router& router, ApiContext& ctx) {
  router.add(
      "GET", "/api/v1/twins/{car}/commands", Role::kViewer,
      [&ctx](const httplib::Request& req, auto& res, const auto& p) { car_commands(ctx, req, res, p[0]); });
  router.add(
      "PATCH", "/api/v1/twins/{car}/desired", Role::kOperator,
      [&ctx](const httplib::Request& req, auto& res, const auto& p) { set_desired(ctx, req, res, p[0]); });
  router.add("GET", "/api/v1/commands/{id}", Role::kViewer, [&ctx](auto&, auto& res, const auto& p) {
    auto c = ctx.stores.acquire()->get_command(p[0]);
    if (!c) throw ApiError(404, "no command '" + p[0] + "'");
    send_json(res, codec::command_to_json(*c));
  });
}

}  // namespace fleettwin::api
