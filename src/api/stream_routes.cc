// The live stream: server-sent events from the hub (hello, throughput, twins, alert), one worker thread
// per client while it is connected.
#include "api/http_helpers.h"
#include "api/routes.h"
#include "api/settings.h"

namespace fleettwin::api {

namespace {

void stream(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  EventHub::Refusal why = EventHub::Refusal::kNone;
  // Counted per token (the router has checked it): one client with one token cannot take every slot.
  auto sub = ctx.hub.subscribe(request_token(req), &why);
  if (why == EventHub::Refusal::kOwnerFull)
    throw ApiError(429, "this token holds " + std::to_string(ctx.options.max_streams_per_token) +
                            " live streams already; close one first");
  if (!sub) throw ApiError(503, "too many live-stream clients; try again later");
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");
  const std::string hello =
      "retry: 2000\nevent: hello\ndata: " + sample_json(ctx.throughput.latest()) + "\n\n";
  res.set_chunked_content_provider(
      "text/event-stream",
      [sub, hello, sent_hello = false](std::size_t, httplib::DataSink& sink) mutable {
        if (!sent_hello) {
          sent_hello = true;
          return sink.write(hello.data(), hello.size());
        }
        // Block for the next event (httplib calls again as soon as this returns); a comment line every
        // 15 s keeps proxies from closing an idle stream and tells us when the client has gone.
        if (auto frame = sub->pop(std::chrono::seconds(15))) return sink.write(frame->data(), frame->size());
        if (sub->closed()) return false;
        static constexpr char kKeepAlive[] = ": keep-alive\n\n";
        return sink.write(kKeepAlive, sizeof kKeepAlive - 1);
      },
      [sub](bool) { sub->close(); });
}

}  // namespace

void add_stream_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/stream", Role::kViewer,
             [&ctx](const httplib::Request& req, auto& res, auto&) { stream(ctx, req, res); });
}

}  // namespace fleettwin::api
