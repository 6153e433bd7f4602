// Drift: the score stage's per-signal PSI of live traffic against the active model's training data, for the
// dashboard's Models page, read from the metrics of this process (the score stage runs here in `up`).
#include <algorithm>
#include <cmath>

#include "api/http_helpers.h"
#include "api/routes.h"
#include "codec/json_writer.h"
#include "core/metric_catalog.h"

namespace fleettwin::api {

namespace {

namespace m = core::metric;

double psi_of(int64_t fixed) { return static_cast<double>(fixed) / std::pow(10.0, m::kDriftDecimals); }

/// `signal="coolant_temp"` -> coolant_temp (signal names carry no quotes: catalog names are identifiers).
std::string signal_of(const std::string& labels) {
  const auto open = labels.find('"');
  const auto close = labels.rfind('"');
  return open == std::string::npos || close <= open ? labels : labels.substr(open + 1, close - open - 1);
}

void drift(ApiContext& ctx, httplib::Response& res) {
  std::vector<std::pair<std::string, double>> signals;
  const core::Metrics* metrics = ctx.options.metrics;
  if (metrics)
    for (const auto& [labels, value] : metrics->samples(m::kDriftPsi))
      signals.emplace_back(signal_of(labels), psi_of(value));
  std::sort(signals.begin(), signals.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  codec::JsonWriter w(out);
  // Measured only where a score stage runs in this process with a model that carries drift references.
  w.begin_object().key("measured").boolean(!signals.empty());
  w.key("max").number(metrics ? psi_of(metrics->value(m::kDriftPsiMax)) : 0.0);
  w.key("retrain_requests").integer(metrics ? metrics->value(m::kDriftRetrainRequests) : 0);
  w.key("signals").begin_array();
  for (const auto& [signal, psi] : signals)
    w.begin_object().key("signal").string(signal).key("psi").number(psi).end_object();
  w.end_array().end_object();
  send_json(res, out);
}

}  // namespace

void add_drift_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/api/v1/drift", Role::kViewer, [&ctx](auto&, auto& res, auto&) { drift(ctx, res); });
}

}  // namespace fleettwin::api
