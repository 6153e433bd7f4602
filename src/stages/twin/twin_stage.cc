#include "stages/twin/twin_stage.h"

#include <spdlog/spdlog.h>

#include "codec/avro.h"
#include "codec/json.h"
#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

const StageDescriptor& TwinStage::static_descriptor() {
  static const StageDescriptor d{
      "twin",
      {t::kTelemetry},
      {t::kTwins},
      {"twin.offline_after"},
      "maintains every car's digital twin and writes changes to the twin changelog"};
  return d;
}

TwinStage::TwinStage(Options options, const core::Clock& clock, core::Metrics& metrics,
                     std::vector<core::Twin> initial)
    : _options(options),
      _clock(clock),
      _stale(metrics.counter("fleettwin_twin_stale_total", "Telemetry older than the twin's state, ignored")),
      _bad(metrics.counter("fleettwin_twin_undecodable_total",
                           "fleet.telemetry records the twin stage could not decode")),
      _online(metrics.gauge("fleettwin_cars_online", "Cars whose twin is online")),
      _count(metrics.gauge("fleettwin_twins", "Twins held by the twin stage")) {
  for (auto& twin : initial) {
    auto id = twin.id;
    _twins.emplace(std::move(id), std::move(twin));
  }
  _count.set(static_cast<int64_t>(_twins.size()));
}

void TwinStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  for (const auto& r : batch) {
    std::string error;
    if (!codec::decode_avro_telemetry(r.value, _t, nullptr, &error)) {
      // process wrote this record, so this is a bug or a foreign writer: count it and move on.
      _bad.add();
      spdlog::warn("twin: undecodable record {}/{}/{}: {}", r.topic, r.partition, r.offset, error);
      continue;
    }
    core::Twin& twin = _twins[_t.car];
    if (!core::apply_telemetry(twin, _t)) {
      _stale.add();
      continue;
    }
    _dirty.push_back(&twin);
  }
  // Coalesce: a car that sent several messages in this batch is written once, in its latest state.
  std::sort(_dirty.begin(), _dirty.end());
  _dirty.erase(std::unique(_dirty.begin(), _dirty.end()), _dirty.end());
  for (auto* twin : _dirty) emit(*twin, out);
  _dirty.clear();
  _count.set(static_cast<int64_t>(_twins.size()));
}

void TwinStage::tick(log::Producer& out) {
  const int64_t now = _clock.now_ms();
  int64_t online = 0;
  for (auto& [id, twin] : _twins) {
    if (core::mark_offline_if_silent(twin, now, _options.offline_after_ms)) emit(twin, out);
    online += twin.online ? 1 : 0;
  }
  _online.set(online);
}

void TwinStage::emit(const core::Twin& twin, log::Producer& out) {
  log::OutRecord o;
  o.topic = t::kTwins;
  o.key = twin.id;
  o.value = codec::twin_to_json(twin);
  out.send(std::move(o));
}

}  // namespace fleettwin::stages
