#include "stages/uplink/uplink_sender.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "codec/avro.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "registry/protocol.h"

namespace fleettwin::stages {

namespace topics = core::topics;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kReplicated[] = {topics::kTelemetry, topics::kTwins, topics::kScores, topics::kAlerts,
                                       topics::kCommandAcks};

bool is_avro(const std::string& topic) {
  return topic == topics::kTelemetry || topic == topics::kScores || topic == topics::kAlerts;
}

}  // namespace

std::string central_topic(const std::string& site, const std::string& topic) { return site + "." + topic; }

UplinkSender::UplinkSender(std::shared_ptr<Spool> spool, UplinkTarget target,
                           std::shared_ptr<UplinkStatus> status, core::Metrics& metrics)
    : _spool(std::move(spool)),
      _target(std::move(target)),
      _status(std::move(status)),
      _bytes(metrics.gauge(core::metric::kUplinkSpoolBytes)),
      _state(metrics.gauge(core::metric::kUplinkState)),
      _sent(metrics.counter(core::metric::kUplinkSent)),
      _failed_batches(metrics.counter("fleettwin_uplink_failed_batches_total",
                                      "Batches central did not acknowledge in time (sent again)")) {}

UplinkSender::~UplinkSender() { stop(); }

void UplinkSender::start() {
  _thread = std::thread([this] { run(); });
}

void UplinkSender::stop() {
  _stop = true;
  if (_thread.joinable()) _thread.join();
}

bool UplinkSender::pause(int64_t ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!_stop && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return !_stop;
}

std::string UplinkSender::rewrite(const std::string& topic, const std::string& value) {
  int32_t edge_id = 0;
  std::string_view body;
  if (!is_avro(topic) || !codec::read_confluent_header(value, edge_id, body)) return value;
  auto it = _central_ids.find(edge_id);
  if (it == _central_ids.end()) {
    const std::string schema = _target.edge_registry->get_schema(edge_id);
    const auto subject = registry::subject_for_topic(central_topic(_target.site, topic));
    const int32_t central_id = _target.central_registry->register_schema(subject, schema);
    spdlog::info("uplink: schema {} of the site is {} on central ({})", edge_id, central_id, subject);
    it = _central_ids.emplace(edge_id, central_id).first;
  }
  std::string out;
  out.reserve(value.size());
  codec::append_confluent_header(out, it->second);
  out.append(body);
  return out;
}

bool UplinkSender::ensure_topics() {
  if (_topics_ready) return true;
  try {
    for (const char* t : kReplicated) {
      log::TopicConfig config = _target.topics;
      config.compacted = std::string_view(t) == topics::kTwins;
      _target.central->create_topic(central_topic(_target.site, t), config);
    }
    _producer = _target.central->producer();
    _topics_ready = true;
  } catch (const std::exception& e) {
    spdlog::warn("uplink: central not ready ({}); spooling", e.what());
  }
  return _topics_ready;
}

bool UplinkSender::send(const std::vector<SpooledRecord>& batch) {
  // Reports may come after a return that gave up on them (stop, a registry error): they count into a
  // tally the callbacks own.
  struct Tally {
    int64_t acked = 0, failed = 0;
  };
  auto tally = std::make_shared<Tally>();
  int64_t& acked = tally->acked;
  int64_t& failed = tally->failed;
  const auto count = static_cast<int64_t>(batch.size());
  try {
    for (const auto& s : batch) {
      log::OutRecord r = s.record;
      r.value = rewrite(r.topic, r.value);
      r.topic = central_topic(_target.site, r.topic);
      _producer->send(std::move(r), [tally](const log::OutRecord&, int64_t, const log::DeliveryError* e) {
        ++(e ? tally->failed : tally->acked);
      });
    }
    // Wait for every report (librdkafka keeps retrying until message.timeout.ms): resending before then
    // could put a car's records out of order. The state turns to spooling once a batch takes long.
    const auto slow_after = Clock::now() + std::chrono::seconds(5);
    while (acked + failed < count) {
      _producer->flush(std::chrono::milliseconds(200));
      if (Clock::now() > slow_after && _status->central_reachable) {
        _status->central_reachable = false;
        _state.set(_status->state());
        spdlog::warn("uplink: central does not acknowledge; spooling ({} records waiting)",
                     _spool->records());
      }
      if (_stop) return false;
    }
  } catch (const std::exception& e) {
    spdlog::warn("uplink: {}; spooling", e.what());
    return false;
  }
  return failed == 0;
}

void UplinkSender::run() {
  int64_t backoff = 250;
  while (!_stop) {
    _bytes.set(_spool->bytes());
    _state.set(_status->state());
    if (!ensure_topics()) {
      _status->central_reachable = false;
      if (!pause(backoff)) break;
      backoff = std::min<int64_t>(backoff * 2, 5000);
      continue;
    }
    const auto batch = _spool->read(0, _target.batch);
    if (batch.empty()) {
      if (!pause(50)) break;
      continue;
    }
    if (send(batch)) {
      _spool->remove_through(batch.back().id);
      _sent.add(static_cast<int64_t>(batch.size()));
      if (!_status->central_reachable) spdlog::info("uplink: central acknowledges again; catching up");
      _status->central_reachable = true;
      backoff = 250;
      continue;
    }
    if (_stop) break;
    _failed_batches.add();
    _status->central_reachable = false;
    // A new producer for the retry: one whose idempotence state central lost (a broker restarted from a
    // crash) stays failed for good.
    _producer.reset();
    _topics_ready = false;
    if (!pause(backoff)) break;
    backoff = std::min<int64_t>(backoff * 2, 5000);
  }
  _bytes.set(_spool->bytes());
}

}  // namespace fleettwin::stages
