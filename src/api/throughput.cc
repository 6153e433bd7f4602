#include "api/throughput.h"

#include <algorithm>

#include "api/http_helpers.h"
#include "codec/json_writer.h"
#include "core/clock.h"
#include "core/metric_catalog.h"

namespace fleettwin::api {

namespace metric = core::metric;

std::string sample_json(const ThroughputSample& s) {
  std::string out;
  codec::JsonWriter(out)
      .begin_object()
      .key("ts")
      .integer(s.ts)
      .key("msgs_per_s")
      .number(s.msgs_per_s)
      .key("published")
      .integer(s.published)
      .key("processed")
      .integer(s.processed)
      .key("stored")
      .integer(s.stored)
      .key("dlq")
      .integer(s.dlq)
      .key("lag")
      .integer(s.lag)
      .key("online")
      .integer(s.online)
      .end_object();
  return out;
}

ThroughputSample take_sample(const core::Metrics* metrics, const std::vector<std::string>& lag_stages,
                             const ThroughputSample& prev, double seconds) {
  ThroughputSample s;
  s.ts = core::wall_clock_ms();
  if (!metrics) return s;
  const auto& m = *metrics;
  s.published = m.value(metric::kSimPublished);
  s.processed = m.value(metric::kRecordsIn, metric::stage_label("process"));
  s.stored = m.value(metric::kTelemetryStored);
  s.dlq = m.sum(metric::kDlq);  // every stage's dead letters, as the dashboard shows them
  s.online = m.value(metric::kCarsOnline);
  for (const auto& stage : lag_stages) s.lag += m.value(metric::kConsumerLag, metric::stage_label(stage));
  if (prev.ts > 0 && seconds > 0) s.msgs_per_s = static_cast<double>(s.processed - prev.processed) / seconds;
  return s;
}

void ThroughputLog::add(const ThroughputSample& s) {
  std::lock_guard lock(_mu);
  _samples.push_back(s);
  while (_samples.size() > kKeep) _samples.pop_front();
}

ThroughputSample ThroughputLog::latest() const {
  std::lock_guard lock(_mu);
  return _samples.empty() ? ThroughputSample{core::wall_clock_ms()} : _samples.back();
}

std::string ThroughputLog::last_json(std::size_t n) const {
  std::lock_guard lock(_mu);
  std::string out = "[";
  n = std::min(_samples.size(), n);
  for (std::size_t i = _samples.size() - n; i < _samples.size(); ++i)
    out += (i + n == _samples.size() ? "" : ",") + sample_json(_samples[i]);
  return out + "]";
}

}  // namespace fleettwin::api
