// The dead-letter queues: the newest records the stages could not use, and how many per stage and reason.
#include "api/http_helpers.h"
#include "api/routes.h"
#include "codec/json_writer.h"

namespace fleettwin::api {

namespace {

void list_dead_letters(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const auto limit = static_cast<std::size_t>(int_param(req, "limit", 100, 1, DlqRecent::kCapacity));
  const std::string stage = query(req, "stage").value_or("");
  const std::string reason = query(req, "reason").value_or("");
  std::string out = "{\"items\":[";
  bool first = true;
  for (const auto& e : ctx.dlq.list(limit, stage, reason)) {
    out += (first ? "" : ",") + dlq_entry_json(e);
    first = false;
  }
  out += "],\"counts\":";
  codec::JsonWriter w(out);
  w.begin_array();
  for (const auto& [pair, count] : ctx.dlq.counts())
    w.begin_object()
        .key("stage")
        .string(pair.first)
        .key("reason")
        .string(pair.second)
        .key("count")
        .integer(count)
        .end_object();
  w.end_array();
  // Without a log the API reads no DLQ: say so rather than claim it is empty.
  out += ",\"source\":";
  out += ctx.options.log ? "\"log\"" : "null";
  send_json(res, out + "}");
}

}  // namespace

void add_dlq_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/dlq", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, auto&) { list_dead_letters(ctx, req, res); });
}

}  // namespace fleettwin::api
