#include "stages/process/process_stage.h"

#include "core/metric_catalog.h"
#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

const StageDescriptor& ProcessStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "process",
      {t::kTelemetryRaw},
      {t::kTelemetry, t::kTelemetryDlq},
      {&config::keys::codec_max_payload_bytes, &config::keys::catalog_unknown_fields},
      "validates raw JSON telemetry and converts it to Avro; rejects go to the DLQ",
      "raw JSON -> validated Avro, rejects to the DLQ",
      {}};
  return kDescriptor;
}

ProcessStage::ProcessStage(Options options, const std::shared_ptr<const catalog::Catalog>& catalog,
                           core::Metrics& metrics)
    : _options(options),
      _decoder(options.max_payload_bytes, catalog, options.unknown_fields),
      _avro(catalog),
      _metrics(metrics),
      _valid(metrics.counter(core::metric::kTelemetryValid)),
      _dead_letters(metrics, "process") {
  // Bounded by the catalog's size (at most catalog::kMaxSignals), so one series per signal up front.
  for (const auto& s : catalog->signals()) {
    _out_of_range.push_back(&metrics.counter(core::metric::kSignalOutOfRange, "signal=\"" + s.name + "\""));
  }
}

namespace {

// Unknown keys become label values: only plain names ([A-Za-z0-9_.-], as catalogs use) qualify.
bool label_safe(std::string_view key) {
  if (key.empty() || key.size() > catalog::kMaxNameLength) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

void ProcessStage::count_flags_and_unknown_fields() {
  for (const auto i : _t.out_of_range) _out_of_range[i]->add();
  if (_decoder.unknown_field_count() == 0) return;
  const auto count = [&](std::string_view name, int64_t n) {
    auto it = _unknown_by_name.find(name);
    if (it == _unknown_by_name.end()) {
      const bool room = _unknown_by_name.size() < kMaxUnknownNames && label_safe(name);
      const std::string label = room ? std::string(name) : "_other";
      it = _unknown_by_name.find(label);
      if (it == _unknown_by_name.end()) {
        auto& c = _metrics.counter(core::metric::kUnknownFields, "field=\"" + label + "\"");
        it = _unknown_by_name.emplace(label, &c).first;
      }
    }
    it->second->add(n);
  };
  for (const auto key : _decoder.unknown_fields()) count(key, 1);
  const auto beyond = _decoder.unknown_field_count() - _decoder.unknown_fields().size();
  if (beyond > 0) count("_other", static_cast<int64_t>(beyond));
}

void ProcessStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  codec::DecodeError error;
  for (const auto& r : batch) {
    if (!_decoder.decode(r.value, _t, error)) {
      _dead_letters.send(r, codec::to_string(error.reason), error.detail, out);
      continue;
    }
    // The key routes the car's records (per-car order); a payload claiming another car is refused.
    if (!r.key.empty() && r.key != _t.car) {
      _dead_letters.send(r, "bad_car_id", "record key '" + r.key + "' does not match car '" + _t.car + "'",
                         out);
      continue;
    }
    count_flags_and_unknown_fields();
    log::OutRecord o;
    o.topic = t::kTelemetry;
    o.key = _t.car;
    _avro.encode(_t, _options.telemetry_schema_id, o.value);
    o.timestamp_ms = r.timestamp_ms;  // keep the ingest time: end-to-end latency is measured from it
    out.send(std::move(o));
    _valid.add();
  }
}

}  // namespace fleettwin::stages
