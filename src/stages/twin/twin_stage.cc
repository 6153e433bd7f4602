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
                     std::vector<core::Twin> initial, codec::TelemetryReader reader)
    : _options(options),
      _clock(clock),
      _stale(metrics.counter("fleettwin_twin_stale_total", "Telemetry older than the twin's state, ignored")),
      _bad(metrics.counter("fleettwin_twin_undecodable_total",
                           "fleet.telemetry records the twin stage could not decode")),
      _online(metrics.gauge("fleettwin_cars_online", "Cars whose twin is online")),
      _count(metrics.gauge("fleettwin_twins", "Twins held by the twin stage")),
      _reader(std::move(reader)) {
  for (auto& twin : initial) {
    _watermark = std::max(_watermark, twin.last_seen);
    auto id = twin.id;
    _twins.emplace(std::move(id), Entry{std::move(twin), false});
  }
  _watermark_at = std::chrono::steady_clock::now();
  _count.set(static_cast<int64_t>(_twins.size()));
}

int64_t TwinStage::now_ms() const {
  if (_watermark == 0) return _clock.now_ms();
  const auto idle =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - _watermark_at)
          .count();
  return std::min(_clock.now_ms(), _watermark + idle);
}

void TwinStage::mark(Entry& e) {
  if (e.dirty) return;
  e.dirty = true;
  _dirty.push_back(&e);
}

void TwinStage::process(const std::vector<log::Record>& batch, log::Producer&) {
  for (const auto& r : batch) {
    std::string error;
    if (!_reader.read(r.value, _t, &error)) {
      // process wrote this record, so this is a bug or a foreign writer: count it and move on.
      _bad.add();
      spdlog::warn("twin: undecodable record {}/{}/{}: {}", r.topic, r.partition, r.offset, error);
      continue;
    }
    Entry& e = _twins[_t.car];
    if (!core::apply_telemetry(e.twin, _t)) {
      _stale.add();
      continue;
    }
    if (_t.ts > _watermark) {
      _watermark = _t.ts;
      _watermark_at = std::chrono::steady_clock::now();
    }
    mark(e);
  }
  _count.set(static_cast<int64_t>(_twins.size()));
}

void TwinStage::tick(log::Producer&) {
  const int64_t now = now_ms();
  int64_t online = 0;
  for (auto& [id, e] : _twins) {
    if (core::mark_offline_if_silent(e.twin, now, _options.offline_after_ms)) mark(e);
    online += e.twin.online ? 1 : 0;
  }
  _online.set(online);
}

void TwinStage::flush_state(log::Producer& out) {
  for (Entry* e : _dirty) {
    log::OutRecord o;
    o.topic = t::kTwins;
    o.key = e->twin.id;
    o.value = codec::twin_to_json(e->twin);
    out.send(std::move(o));
    e->dirty = false;
  }
  _dirty.clear();
}

}  // namespace fleettwin::stages
