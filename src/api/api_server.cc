// The server only wires and routes: the handlers live one group per file (routes.h), the shared state in
// ApiContext, the background thread in LiveFeed.
#include "api/api_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "api/bounded_server.h"
#include "api/context.h"
#include "api/live_feed.h"
#include "api/router.h"
#include "api/routes.h"

namespace fleettwin::api {

namespace {

/// Every REST route, in the order ApiServer::routes() lists them.
std::vector<RouteInfo> add_routes(httplib::Server& http, ApiContext& ctx) {
  Router router(http, ctx.options.tokens);
  add_system_routes(router, ctx);
  add_twin_routes(router, ctx);
  add_command_routes(router, ctx);
  add_alert_routes(router, ctx);
  add_drift_routes(router, ctx);
  add_fleet_routes(router, ctx);
  add_aggregate_routes(router, ctx);
  add_model_routes(router, ctx);
  add_stream_routes(router, ctx);
  add_dlq_routes(router, ctx);
  return router.routes();
}

}  // namespace

struct ApiServer::Impl {
  ApiContext ctx;
  BoundedServer http;
  LiveFeed feed{ctx};
  std::thread listener;
  std::mutex stop_mu;
  bool stopped = false;
  int bound_port = 0;
  int listen_socket = -1;  // set while binding (set_socket_options), to widen the listen backlog

  // Ordinary requests get `threads` workers and each live stream one more of its own.
  explicit Impl(ApiOptions o)
      : ctx(std::move(o)),
        http(ctx.options.threads + ctx.options.max_stream_clients, ctx.options.max_connections,
             ctx.connections) {}

  void bind();
};

void ApiServer::Impl::bind() {
  // Debian's libcpp-httplib is compiled with a listen backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when
  // the library was built): when a burst of clients connects at once (every dashboard reconnecting its
  // live stream after a restart), the kernel drops the handshakes beyond it and the clients retry after 1,
  // 3, 7, 15 s... Linux lets listen() be called again on a listening socket to change its backlog, so the
  // socket is caught while httplib creates it and widened after the bind. Only SO_REUSEADDR, not httplib's
  // default SO_REUSEPORT: with it a second `fleettwin up` on the same port started without an error, and the
  // kernel shared the connections between the two (as the embedded registry does, registry_server.cc).
  http.set_socket_options([this](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_socket = sock;
  });
  const auto& o = ctx.options;
  if (o.port == 0) {
    bound_port = http.bind_to_any_port(o.host);
  } else {
    bound_port = http.bind_to_port(o.host, o.port) ? o.port : -1;
  }
  if (bound_port <= 0) throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port));
  constexpr int kListenBacklog = 1024;  // the kernel caps it at net.core.somaxconn
  if (listen_socket >= 0 && ::listen(listen_socket, kListenBacklog) != 0)
    spdlog::warn("api: could not widen the listen backlog: {}", std::strerror(errno));
}

ApiServer::ApiServer(ApiOptions options) : _impl(std::make_unique<Impl>(std::move(options))) {}

ApiServer::~ApiServer() { stop(); }

void ApiServer::start() {
  auto& impl = *_impl;
  impl.http.set_payload_max_length(kMaxRequestBodyBytes);
  add_routes(impl.http, impl.ctx);
  serve_dashboard(impl.http, impl.ctx.options.web_dir);
  impl.bind();
  impl.listener = std::thread([&impl] { impl.http.listen_after_bind(); });
  impl.feed.start();
}

void ApiServer::stop() {
  auto& impl = *_impl;
  {
    std::lock_guard lock(impl.stop_mu);
    if (impl.stopped) return;
    impl.stopped = true;
  }
  impl.feed.request_stop();
  impl.ctx.hub.close_all();
  impl.feed.join();
  impl.http.stop();
  if (impl.listener.joinable()) impl.listener.join();
}

int ApiServer::port() const { return _impl->bound_port; }

std::string ApiServer::url() const {
  std::string host = _impl->ctx.options.host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "127.0.0.1";
  return "http://" + host + ":" + std::to_string(_impl->bound_port);
}

std::vector<RouteInfo> ApiServer::routes() {
  httplib::Server http;
  ApiContext ctx{ApiOptions{}};
  return add_routes(http, ctx);
}

}  // namespace fleettwin::api
