#include "stages/sink/sink_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <unordered_map>

#include "codec/avro.h"
#include "codec/json.h"
#include "codec/schemas.h"
#include "core/clock.h"
#include "core/metric_catalog.h"
#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

const StageDescriptor& SinkStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "sink",
      {t::kTelemetry, t::kTwins, t::kAlerts, t::kCommands, t::kCommandAcks},
      {},
      {},
      "stores telemetry history, twins, alerts and commands (with their status), "
      "idempotently, in the twin store",
      "telemetry and twins -> store",
      {{"--mongo", &config::keys::store_mongo_uri, "Store in MongoDB/FerretDB at this URI instead of SQLite"},
       {"--postgres", &config::keys::store_postgres_uri,
        "Store in PostgreSQL at this URI (postgresql://...) instead of SQLite"}}};
  return kDescriptor;
}

SinkStage::SinkStage(std::unique_ptr<store::TwinStore> store, core::Metrics& metrics,
                     core::Histogram& latency, registry::TelemetryReader reader)
    : SinkStage(std::move(store), metrics, latency, std::move(reader), RetryOptions{}) {}

SinkStage::SinkStage(std::unique_ptr<store::TwinStore> store, core::Metrics& metrics,
                     core::Histogram& latency, registry::TelemetryReader reader, RetryOptions retry)
    : _store(std::move(store)),
      _latency(latency),
      _reader(std::move(reader)),
      _stored(metrics.counter(core::metric::kTelemetryStored)),
      _duplicates(metrics.counter("fleettwin_telemetry_duplicates_total",
                                  "Telemetry rows the store already had (replays), not inserted again")),
      _twins_applied(metrics.counter(core::metric::kTwinWrites)),
      _twins_stale(metrics.counter("fleettwin_twin_writes_stale_total",
                                   "Twin upserts refused because the store held newer state")),
      _bad(metrics.counter("fleettwin_sink_undecodable_total", "Records the sink could not decode")),
      _store_retries(metrics.counter("fleettwin_sink_store_retries_total",
                                     "Store writes the sink repeated because the store was unreachable")),
      _retry(retry) {}

void SinkStage::interrupt() {
  {
    std::lock_guard lock(_wake_mu);
    _interrupted = true;
  }
  _wake.notify_all();
}

template <typename F>
auto SinkStage::retrying(F&& call) {
  // An outage of the store (server restarting, network) must not end the sink: the runner would stop and
  // the process exit. So a transient failure is retried with capped backoff while the input waits (lag
  // grows, nothing is committed); the write is idempotent, so a retry after a partial write stores nothing
  // twice. A non-transient failure (a bug, bad data) still throws and stops the runner, as does a stop
  // request during an outage: the batch is then not committed and is replayed by the next sink.
  auto wait = _retry.first;
  int64_t attempts = 0;
  for (;;) {
    try {
      auto result = call();
      if (attempts > 0) spdlog::info("sink: store reachable again after {} retries", attempts);
      return result;
    } catch (const std::exception& e) {
      if (!_store->transient_failure(e)) throw;
      // Logged once per outage; the metric counts every retry.
      if (attempts == 0) spdlog::warn("sink: store unreachable, retrying until it is back: {}", e.what());
    }
    // Checked only once a call failed: a stop request while the store answers finishes the batch as usual.
    std::unique_lock lock(_wake_mu);
    if (_wake.wait_for(lock, wait, [&] { return _interrupted.load(); })) {
      throw std::runtime_error("sink: stopped while the store was unreachable");
    }
    ++attempts;
    _store_retries.add();
    wait = std::min(wait * 2, _retry.max);
  }
}

void SinkStage::process(const std::vector<log::Record>& batch, log::Producer&) {
  _batch.telemetry.clear();
  _batch.twins.clear();
  _batch.alerts.clear();
  _batch.commands.clear();
  std::unordered_map<std::string, std::size_t> command_index;  // id -> position in _batch.commands
  auto& twin_index = _twin_index;                              // car -> position in _batch.twins
  auto& ingest_times = _ingest_times;
  twin_index.clear();
  ingest_times.clear();
  std::string error;
  core::Twin twin;
  for (const auto& r : batch) {
    if (r.topic == t::kTelemetry) {
      auto& row = _batch.telemetry.emplace_back();
      if (!_reader.read(r.value, row.t, &error)) {
        _batch.telemetry.pop_back();
        _bad.add();
        spdlog::warn("sink: undecodable telemetry {}/{}/{}: {}", r.topic, r.partition, r.offset, error);
        continue;
      }
      ingest_times.push_back(r.timestamp_ms);
    } else if (r.topic == t::kTwins) {
      if (!codec::twin_from_json(r.value, twin, &error, _reader.catalog())) {
        _bad.add();
        spdlog::warn("sink: undecodable twin {}/{}/{}: {}", r.topic, r.partition, r.offset, error);
        continue;
      }
      // Coalesce per car: keep the newest state of the batch, so the store does one upsert per car.
      auto [it, inserted] = twin_index.try_emplace(twin.id, _batch.twins.size());
      if (inserted) {
        _batch.twins.push_back(std::move(twin));
      } else {
        auto& kept = _batch.twins[it->second];
        if (std::pair(twin.reported.seq, twin.version) > std::pair(kept.reported.seq, kept.version))
          kept = std::move(twin);
      }
      twin = core::Twin{};
    } else if (r.topic == t::kAlerts) {
      core::Alert a;
      if (!codec::decode_avro_alert(r.value, a, nullptr, &error)) {
        _bad.add();
        spdlog::warn("sink: undecodable alert {}/{}/{}: {}", r.topic, r.partition, r.offset, error);
        continue;
      }
      if (auto old = retrying([&] { return _store->get_alert(a.id); }))
        a.acknowledged = old->acknowledged;  // an operator's ack stays
      _batch.alerts.push_back(std::move(a));
    } else if (r.topic == t::kCommands) {
      core::Command c;
      if (!codec::command_from_json(r.value, c, &error)) {
        _bad.add();
        continue;
      }
      if (c.car.empty()) c.car = r.key;
      auto [it, inserted] = command_index.try_emplace(c.id, _batch.commands.size());
      if (!inserted) {
        // Its answer came earlier in this batch (below): fill in the command, keep the answer's status.
        auto& early = _batch.commands[it->second];
        if (early.name.empty()) {
          c.status = early.status;
          early = std::move(c);
        }
        continue;
      }
      // A replayed command must not move an answered one back to pending (nor an answer stored before its
      // command arrived: see below).
      if (auto old = retrying([&] { return _store->get_command(c.id); }); old && old->status != "pending")
        c.status = old->status;
      _batch.commands.push_back(std::move(c));
    } else if (r.topic == t::kCommandAcks) {
      core::CommandAck a;
      if (!codec::command_ack_from_json(r.value, a, &error)) {
        _bad.add();
        continue;
      }
      core::Command* c = nullptr;
      if (auto it = command_index.find(a.id); it != command_index.end()) {
        c = &_batch.commands[it->second];
      } else if (auto stored = retrying([&] { return _store->get_command(a.id); })) {
        command_index.emplace(a.id, _batch.commands.size());
        c = &_batch.commands.emplace_back(std::move(*stored));
      }
      // An answer can arrive before its command: the two topics are read in no fixed order (Kafka orders
      // records within a partition only), and a car answers within milliseconds. Store the answer as a
      // nameless command; when the command comes, it is filled in and keeps the answer's status.
      if (!c) {
        command_index.emplace(a.id, _batch.commands.size());
        c = &_batch.commands.emplace_back();
        c->id = a.id;
        c->car = r.key.empty() ? a.car : r.key;
        c->params_json = "{}";
        c->created = a.ts;
        c->status = a.status;
        continue;
      }
      // "acked" is final; a late "expired" from the twin stage does not overwrite it.
      if (c->status != "acked") c->status = a.status;
    }
  }
  const auto result = retrying([&] { return _store->write(_batch); });
  _stored.add(result.telemetry_inserted);
  _duplicates.add(result.telemetry_duplicates);
  _twins_applied.add(result.twins_applied);
  _twins_stale.add(result.twins_stale);
  const int64_t now = core::wall_clock_ms();
  for (int64_t ingest : ingest_times) _latency.record_us(std::max<int64_t>(0, now - ingest) * 1000);
}

}  // namespace fleettwin::stages
