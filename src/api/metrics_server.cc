#include "api/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <stdexcept>
#include <thread>
#include <utility>

#include "api/bounded_server.h"

namespace fleettwin::api {

struct MetricsServer::Impl {
  Impl(const core::Metrics& m, std::string h, int p, std::function<bool()> r)
      : metrics(m), host(std::move(h)), port(p), ready(std::move(r)) {}

  const core::Metrics& metrics;
  std::string host;
  int port;
  std::function<bool()> ready;
  ConnectionCounts counts;
  // Two workers: a scrape and a probe at once; a few connections (Prometheus keeps one alive per target).
  BoundedServer http{2, 64, counts};
  std::thread listener;
  bool started = false;
};

MetricsServer::MetricsServer(const core::Metrics& metrics, std::string host, int port,
                             std::function<bool()> ready)
    : _impl(std::make_unique<Impl>(metrics, std::move(host), port, std::move(ready))) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start() {
  auto& impl = *_impl;
  impl.http.Get("/metrics", [&impl](const httplib::Request&, httplib::Response& res) {
    res.set_content(impl.metrics.prometheus_text(), "text/plain; version=0.0.4");
  });
  impl.http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  impl.http.Get("/readyz", [&impl](const httplib::Request&, httplib::Response& res) {
    if (impl.ready && !impl.ready()) {
      res.status = 503;
      res.set_content(R"({"error":"not ready"})", "application/json");
      return;
    }
    res.set_content(R"({"status":"ready"})", "application/json");
  });
  // SO_REUSEADDR only, not httplib's default SO_REUSEPORT: a second process on the same port must fail to
  // bind (as the API server does, api_server.cc).
  impl.http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (impl.port == 0) {
    impl.port = impl.http.bind_to_any_port(impl.host);
  } else if (!impl.http.bind_to_port(impl.host, impl.port)) {
    impl.port = -1;
  }
  if (impl.port <= 0) throw std::runtime_error("cannot listen on " + impl.host);
  impl.listener = std::thread([&impl] { impl.http.listen_after_bind(); });
  impl.started = true;
}

void MetricsServer::stop() {
  auto& impl = *_impl;
  if (!impl.started) return;
  impl.started = false;
  impl.http.stop();
  if (impl.listener.joinable()) impl.listener.join();
}

std::string MetricsServer::url() const {
  std::string host = _impl->host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "127.0.0.1";
  return "http://" + host + ":" + std::to_string(_impl->port);
}

}  // namespace fleettwin::api
