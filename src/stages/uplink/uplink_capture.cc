#include "stages/uplink/uplink_capture.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>
#include <unordered_map>

#include "core/metric_catalog.h"
#include "core/topics.h"

namespace fleettwin::stages {

namespace topics = core::topics;

void UplinkStatus::saw(const std::string& car) {
  std::lock_guard lock(_mu);
  _cars.insert(car);
}

bool UplinkStatus::seen(const std::string& car) const {
  std::lock_guard lock(_mu);
  return _cars.contains(car);
}

const char* uplink_state_name(UplinkStatus::State s) {
  switch (s) {
    case UplinkStatus::kLive:
      return "live";
    case UplinkStatus::kSpooling:
      return "spooling";
    case UplinkStatus::kFull:
      return "full";
  }
  return "live";
}

const StageDescriptor& UplinkCapture::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "uplink",
      {topics::kTelemetry, topics::kTwins, topics::kScores, topics::kAlerts, topics::kCommandAcks},
      {},
      {&config::keys::site, &config::keys::uplink_brokers, &config::keys::uplink_registry,
       &config::keys::uplink_disk_budget, &config::keys::uplink_disk_budget_min},
      "spools what an edge site replicates to central (store-and-forward)",
  };
  return kDescriptor;
}

UplinkCapture::UplinkCapture(std::shared_ptr<Spool> spool, std::shared_ptr<SpoolBudget> budget,
                             std::shared_ptr<UplinkStatus> status, registry::TelemetryReader reader,
                             core::Metrics& metrics)
    : _spool(std::move(spool)),
      _budget(std::move(budget)),
      _status(std::move(status)),
      _reader(std::move(reader)),
      _bytes(metrics.gauge(core::metric::kUplinkSpoolBytes)),
      _state(metrics.gauge(core::metric::kUplinkState)),
      _budget_gauge(metrics.gauge(core::metric::kUplinkSpoolBudget)),
      _undecodable(
          metrics.counter("fleettwin_uplink_undecodable_total",
                          "fleet.telemetry records the uplink spooled without a mark (undecodable)")) {
  _bytes.set(_spool->bytes());
  _budget_gauge.set(_budget->bytes());
}

void UplinkCapture::wait_for_room(int64_t bytes) {
  bool said = false;
  while (_spool->bytes() > 0 && _spool->bytes() + bytes > _budget->bytes()) {
    if (!said) {
      spdlog::warn("uplink: spool full ({} bytes of {}); holding the cars back until central takes more",
                   _spool->bytes(), _budget->bytes());
      said = true;
    }
    _status->full = true;
    _state.set(_status->state());
    _bytes.set(_spool->bytes());
    if (_interrupted) throw std::runtime_error("stopped while the uplink spool was full");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (said) spdlog::info("uplink: spool has room again; taking the cars' data");
  _status->full = false;
  _state.set(_status->state());
}

void UplinkCapture::process(const std::vector<log::Record>& batch, log::Producer&) {
  std::vector<log::OutRecord> out;
  out.reserve(batch.size());
  std::unordered_map<std::string, CarMark> marks;
  int64_t bytes = 0;
  core::Telemetry t;
  for (const auto& r : batch) {
    if (r.topic == topics::kTelemetry) {
      std::string error;
      if (_reader.read(r.value, t, &error)) {
        auto& m = marks[t.car];
        if (t.seq > m.seq) m = CarMark{t.car, t.seq, t.ts};
      } else {
        // Still replicated: central's readers dead-letter it with their reason, as the edge's did.
        _undecodable.add();
      }
    }
    log::OutRecord& o = out.emplace_back();
    o.topic = r.topic;
    o.key = r.key;
    o.value = r.value;
    o.headers = r.headers;
    // Central partitions the copies by its own hash: say which of the site's partitions the record was in,
    // the order central's aggregate stage pairs this site's scores with its events in (StatusMatcher).
    if (r.topic == topics::kTelemetry || r.topic == topics::kScores)
      o.headers.push_back({topics::kHeaderSitePartition, std::to_string(r.partition)});
    o.timestamp_ms = r.timestamp_ms;
    bytes += spooled_size(o);
  }
  // The traffic is measured as it arrives, before any wait: a full spool does not hide it.
  if (_budget->observe(bytes)) {
    _spool->set_rate(_budget->rate());
    _budget_gauge.set(_budget->bytes());
  }
  wait_for_room(bytes);
  std::vector<CarMark> list;
  list.reserve(marks.size());
  for (auto& [car, m] : marks) {
    _status->saw(car);
    list.push_back(std::move(m));
  }
  _spool->append(out, list);
  _bytes.set(_spool->bytes());
}

}  // namespace fleettwin::stages
