#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/metrics.h"

namespace fleettwin::api {

/// The HTTP endpoint of a role process that has no REST API (bridge, process, twin, score, sink, sim...):
/// GET /metrics (the process's registry in the Prometheus text format), /healthz and /readyz, without a
/// token, as `fleettwin api` serves them. Prometheus scrapes it (deploy/prometheus) and Kubernetes probes it.
///
/// Threads: start()/stop() from the owner; requests on two httplib workers (a scrape and a probe at once).
class MetricsServer {
 public:
  /// `metrics` must outlive the server. `ready` (null: ready once listening) answers /readyz.
  MetricsServer(const core::Metrics& metrics, std::string host, int port, std::function<bool()> ready = {});
  ~MetricsServer();  ///< stops
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// Binds (port 0: any free port) and starts serving. Throws std::runtime_error when it cannot bind.
  void start();
  /// Stops accepting and joins the listener. Idempotent.
  void stop();
  /// "http://host:port" (a wildcard host is reported as 127.0.0.1).
  std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> _impl;
};

}  // namespace fleettwin::api
