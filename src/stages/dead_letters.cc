#include "stages/dead_letters.h"

#include "core/metric_catalog.h"
#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

std::string dlq_of(std::string_view input_topic) {
  if (input_topic == t::kTelemetryRaw) return t::kTelemetryDlq;
  return std::string(input_topic) + ".dlq";
}

DeadLetters::DeadLetters(core::Metrics& metrics, std::string stage)
    : _metrics(metrics),
      _stage(std::move(stage)),
      _total(metrics.counter(core::metric::kDlq, core::metric::stage_label(_stage))) {}

void DeadLetters::send(const log::Record& r, std::string_view reason, std::string_view detail,
                       log::Producer& out) {
  log::OutRecord o;
  o.topic = dlq_of(r.topic);
  o.key = r.key;
  o.value = r.value;
  o.headers = r.headers;
  o.headers.push_back({t::kHeaderErrorReason, std::string(reason)});
  o.headers.push_back({t::kHeaderErrorStage, _stage});
  o.headers.push_back({t::kHeaderErrorDetail, std::string(detail)});
  o.headers.push_back(
      {"source.offset", r.topic + "/" + std::to_string(r.partition) + "/" + std::to_string(r.offset)});
  o.timestamp_ms = r.timestamp_ms;
  out.send(std::move(o));
  count(reason);
}

void DeadLetters::send(std::string_view dlq_topic, log::OutRecord o, std::string_view reason,
                       std::string_view detail, std::string_view source, log::Producer& out) {
  o.topic = std::string(dlq_topic);
  o.headers.push_back({t::kHeaderErrorReason, std::string(reason)});
  o.headers.push_back({t::kHeaderErrorStage, _stage});
  o.headers.push_back({t::kHeaderErrorDetail, std::string(detail)});
  o.headers.push_back({"source", std::string(source)});
  out.send(std::move(o));
  count(reason);
}

void DeadLetters::count(std::string_view reason) {
  _total.add();
  auto it = _by_reason.find(reason);
  if (it == _by_reason.end()) {
    auto& counter =
        _metrics.counter("fleettwin_dlq_reason_total", "DLQ records by stage and reason",
                         core::metric::stage_label(_stage) + ",reason=\"" + std::string(reason) + "\"");
    it = _by_reason.emplace(std::string(reason), &counter).first;
  }
  it->second->add();
}

}  // namespace fleettwin::stages
