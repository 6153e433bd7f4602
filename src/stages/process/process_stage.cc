#include "stages/process/process_stage.h"

#include "codec/avro.h"
#include "core/metric_catalog.h"
#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

const StageDescriptor& ProcessStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "process",
      {t::kTelemetryRaw},
      {t::kTelemetry, t::kTelemetryDlq},
      {&config::keys::codec_max_payload_bytes},
      "validates raw JSON telemetry and converts it to Avro; rejects go to the DLQ",
      "raw JSON -> validated Avro, rejects to the DLQ",
      {}};
  return kDescriptor;
}

ProcessStage::ProcessStage(Options options, core::Metrics& metrics)
    : _options(options),
      _decoder(options.max_payload_bytes),
      _metrics(metrics),
      _valid(metrics.counter(core::metric::kTelemetryValid)),
      _dlq(metrics.counter(core::metric::kDlq, core::metric::stage_label("process"))) {}

void ProcessStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  codec::DecodeError error;
  for (const auto& r : batch) {
    if (!_decoder.decode(r.value, _t, error)) {
      reject(r, codec::to_string(error.reason), error.detail, out);
      continue;
    }
    // The key routes the car's records (per-car order); a payload claiming another car is refused.
    if (!r.key.empty() && r.key != _t.car) {
      reject(r, "bad_car_id", "record key '" + r.key + "' does not match car '" + _t.car + "'", out);
      continue;
    }
    log::OutRecord o;
    o.topic = t::kTelemetry;
    o.key = _t.car;
    codec::encode_avro_telemetry(_t, _options.telemetry_schema_id, o.value);
    o.timestamp_ms = r.timestamp_ms;  // keep the ingest time: end-to-end latency is measured from it
    out.send(std::move(o));
    _valid.add();
  }
}

void ProcessStage::reject(const log::Record& r, std::string_view reason, const std::string& detail,
                          log::Producer& out) {
  log::OutRecord o;
  o.topic = t::kTelemetryDlq;
  o.key = r.key;
  o.value = r.value;
  o.headers = r.headers;
  o.headers.push_back({t::kHeaderErrorReason, std::string(reason)});
  o.headers.push_back({t::kHeaderErrorStage, "process"});
  o.headers.push_back({t::kHeaderErrorDetail, detail});
  o.headers.push_back(
      {"source.offset", r.topic + "/" + std::to_string(r.partition) + "/" + std::to_string(r.offset)});
  o.timestamp_ms = r.timestamp_ms;
  out.send(std::move(o));
  _dlq.add();
  auto it = _dlq_by_reason.find(reason);
  if (it == _dlq_by_reason.end()) {
    auto& counter = _metrics.counter("fleettwin_dlq_reason_total", "DLQ records by reason",
                                     "reason=\"" + std::string(reason) + "\"");
    it = _dlq_by_reason.emplace(std::string(reason), &counter).first;
  }
  it->second->add();
}

}  // namespace fleettwin::stages
