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
#include "stages/record_checks.h"

namespace fleettwin::stages {

namespace t = core::topics;

const StageDescriptor& SinkStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "sink",
      {t::kTelemetry, t::kTwins, t::kAlerts, t::kCommands, t::kCommandAcks, t::kAggregates},
      {dlq_of(t::kTelemetry), dlq_of(t::kTwins), dlq_of(t::kAlerts), dlq_of(t::kCommands),
       dlq_of(t::kCommandAcks), dlq_of(t::kAggregates)},
      {&config::keys::store_history_retention, &config::keys::store_aggregates_retention,
       &config::keys::store_retention_interval},
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
      _dead_letters(metrics, "sink"),
      _stored(metrics.counter(core::metric::kTelemetryStored)),
      _duplicates(metrics.counter("fleettwin_telemetry_duplicates_total",
                                  "Telemetry rows the store already had (replays), not inserted again")),
      _twins_applied(metrics.counter(core::metric::kTwinWrites)),
      _twins_stale(metrics.counter("fleettwin_twin_writes_stale_total",
                                   "Twin upserts refused because the store held newer state")),
      _store_retries(metrics.counter("fleettwin_sink_store_retries_total",
                                     "Store writes the sink repeated because the store was unreachable")),
      _aggregates_stored(
          metrics.counter("fleettwin_aggregates_stored_total",
                          "Window results the sink upserted (revisions and replays included)")),
      _retry(retry),
      _metrics(metrics) {}

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

void SinkStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  _batch.telemetry.clear();
  _batch.twins.clear();
  _batch.alerts.clear();
  _batch.commands.clear();
  _command_index.clear();
  _twin_index.clear();
  _ingest_times.clear();
  _aggregates.clear();
  for (const auto& r : batch) {
    if (r.topic == t::kTelemetry) {
      add_telemetry(r, out);
    } else if (r.topic == t::kTwins) {
      add_twin(r, out);
    } else if (r.topic == t::kAlerts) {
      add_alert(r, out);
    } else if (r.topic == t::kCommands) {
      add_command(r, out);
    } else if (r.topic == t::kCommandAcks) {
      add_answer(r, out);
    } else if (r.topic == t::kAggregates) {
      add_aggregate(r, out);
    }
  }
  const auto result = retrying([&] { return _store->write(_batch); });
  // Idempotent on its own (the highest revision per window wins), so a second write per batch keeps the
  // sink's replay safety: the input is committed only after both.
  if (!_aggregates.empty()) {
    retrying([&] {
      _store->upsert_aggregates(_aggregates);
      return true;
    });
    _aggregates_stored.add(static_cast<int64_t>(_aggregates.size()));
  }
  for (const auto& row : _batch.telemetry) _newest_ts = std::max(_newest_ts, row.t.ts);
  _stored.add(result.telemetry_inserted);
  _duplicates.add(result.telemetry_duplicates);
  _twins_applied.add(result.twins_applied);
  _twins_stale.add(result.twins_stale);
  const int64_t now = core::wall_clock_ms();
  for (int64_t ingest : _ingest_times) _latency.record_us(std::max<int64_t>(0, now - ingest) * 1000);
  enforce_retention();
}

void SinkStage::enforce_retention() {
  if ((_retention.history_ms <= 0 && _retention.aggregates_ms <= 0) || _newest_ts == INT64_MIN) return;
  const int64_t now = _retention.clock != nullptr ? _retention.clock->now_ms() : core::wall_clock_ms();
  if (!_retention_more && _retention_last_ms != INT64_MIN &&
      now - _retention_last_ms < _retention.interval_ms)
    return;
  _retention_last_ms = now;
  try {
    // Event time: the retention before the newest ts stored, or before now if that is in the future (a car
    // whose clock runs ahead must not age everyone's history); a replay of old data keeps its own week.
    const int64_t base = std::min(now, _newest_ts);
    bool more = false;
    if (_retention.history_ms > 0) {
      const int64_t cutoff = base - _retention.history_ms;
      const auto r = retrying([&] { return _store->enforce_retention(cutoff); });
      more = record_retention(_history_metrics, "history", r, now) || more;
      _retention_cutoff = std::max(_retention_cutoff, cutoff);
      if (r.removed > 0 && _retention_rows_removed >= 0)
        _retention_rows_removed = r.store == "postgres" ? -1 : _retention_rows_removed + r.removed;
    }
    if (_retention.aggregates_ms > 0) {
      // Windows by their start: an hourly window goes once its start is older than the retention.
      const auto r =
          retrying([&] { return _store->enforce_aggregates_retention(base - _retention.aggregates_ms); });
      more = record_retention(_aggregates_metrics, "aggregates", r, now) || more;
    }
    _retention_more = more;
  } catch (const std::exception& e) {
    if (_interrupted) throw;
    _retention_more = false;
    spdlog::warn("sink: retention failed, trying again in {} ms: {}", _retention.interval_ms, e.what());
  }
}

bool SinkStage::record_retention(RetentionMetrics& m, std::string_view kind, const store::RetentionResult& r,
                                 int64_t now_ms) {
  if (m.removed == nullptr) {
    const std::string label = "store=\"" + std::string(r.store) + "\"";
    if (kind == "history") {
      m.removed = &_metrics.counter(
          "fleettwin_store_retention_removed_total",
          "History removed by retention: rows (SQLite, MongoDB) or day partitions (PostgreSQL)", label);
      m.oldest = &_metrics.gauge("fleettwin_store_history_oldest_timestamp_seconds",
                                 "Event time of the oldest history the store still holds (0: none)", label);
    } else {
      m.removed =
          &_metrics.counter("fleettwin_store_aggregates_removed_total",
                            "Window aggregates removed by retention (store.aggregates_retention)", label);
      m.oldest =
          &_metrics.gauge("fleettwin_store_aggregates_oldest_timestamp_seconds",
                          "Start of the oldest window aggregate the store still holds (0: none)", label);
    }
    m.last_run =
        &_metrics.gauge("fleettwin_store_retention_last_run_timestamp_seconds",
                        "When the sink last ran retention, by the run's clock (simulated with --fast)",
                        label + ",data=\"" + std::string(kind) + "\"");
  }
  m.removed->add(r.removed);
  m.oldest->set(r.oldest_ms == INT64_MAX ? 0 : r.oldest_ms / 1000);
  m.last_run->set(now_ms / 1000);
  if (r.removed > 0) spdlog::debug("sink: {} retention removed {} ({})", kind, r.removed, r.store);
  return r.more;
}

void SinkStage::add_aggregate(const log::Record& r, log::Producer& out) {
  codec::AggregateResult a;
  std::string error;
  if (!codec::decode_avro_aggregate_result(r.value, a, nullptr, &error)) {
    _dead_letters.send(r, "undecodable", error, out);
    return;
  }
  // The key names the window: a record whose key says another window is not the aggregate stage's.
  if (r.key != codec::aggregate_result_key(a.aggregate, a.group, a.window_start)) {
    _dead_letters.send(r, "bad_key", "key does not name the result's window", out);
    return;
  }
  store::AggregateRow row;
  row.aggregate = std::move(a.aggregate);
  row.group = std::move(a.group);
  row.window_start_ms = a.window_start;
  row.window_end_ms = a.window_end;
  row.revision = static_cast<uint32_t>(a.revision);
  row.final = a.final;
  row.count = a.count;
  row.values.reserve(a.values.size());
  for (auto& v : a.values) row.values.emplace_back(std::move(v.column), v.value);
  _aggregates.push_back(std::move(row));
}

void SinkStage::add_telemetry(const log::Record& r, log::Producer& out) {
  std::string error;
  auto& row = _batch.telemetry.emplace_back();
  codec::Refusal why;
  if (!_reader.read(r.value, row.t, &error)) {
    why = {_reader.failure_reason(), error};
  } else if (key_matches(r, row.t.car, why)) {
    _ingest_times.push_back(r.timestamp_ms);
    return;
  }
  _batch.telemetry.pop_back();
  _dead_letters.send(r, why.reason, why.detail, out);
}

void SinkStage::add_twin(const log::Record& r, log::Producer& out) {
  std::string error;
  core::Twin twin;
  if (!codec::twin_from_json(r.value, twin, &error, _reader.catalog())) {
    _dead_letters.send(r, "undecodable", error, out);
    return;
  }
  if (codec::Refusal why; !key_matches(r, twin.id, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  // Setting names become field names in the store (MongoDB: `desired.<name>`): a name with a `.` or a `$`
  // would be read as a path or an operator and fail the batch on every replay.
  for (const auto* settings : {&twin.desired, &twin.reported_settings})
    for (const auto& [name, value] : *settings)
      if (!codec::safe_field_name(name)) {
        _dead_letters.send(r, "invalid_twin", "setting name is not a plain identifier", out);
        return;
      }
  // Coalesce per car: keep the newest state of the batch, so the store does one upsert per car.
  auto [it, inserted] = _twin_index.try_emplace(twin.id, _batch.twins.size());
  if (inserted) {
    _batch.twins.push_back(std::move(twin));
  } else if (auto& kept = _batch.twins[it->second];
             std::pair(twin.reported.seq, twin.version) > std::pair(kept.reported.seq, kept.version)) {
    kept = std::move(twin);
  }
}

void SinkStage::add_alert(const log::Record& r, log::Producer& out) {
  std::string error;
  core::Alert a;
  if (!codec::decode_avro_alert(r.value, a, nullptr, &error)) {
    _dead_letters.send(r, "undecodable", error, out);
    return;
  }
  if (codec::Refusal why; !key_matches(r, a.car, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  if (auto old = retrying([&] { return _store->get_alert(a.id); }))
    a.acknowledged = old->acknowledged;  // an operator's ack stays
  _batch.alerts.push_back(std::move(a));
}

void SinkStage::add_command(const log::Record& r, log::Producer& out) {
  core::Command c;
  std::map<std::string, std::string> settings;
  if (codec::Refusal why; !read_command(r, c, settings, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  auto [it, inserted] = _command_index.try_emplace(c.id, _batch.commands.size());
  if (!inserted) {
    // Its answer came earlier in this batch (below): fill in the command, keep the answer's status, but
    // only an answer of the command's own car.
    auto& early = _batch.commands[it->second];
    if (early.name.empty()) {
      if (early.car == c.car) c.status = early.status;
      early = std::move(c);
    }
    return;
  }
  // A replayed command must not move an answered one back to pending (nor an answer stored before its
  // command arrived: see add_answer), unless that answer came from another car.
  if (auto old = retrying([&] { return _store->get_command(c.id); });
      old && old->status != "pending" && old->car == c.car)
    c.status = old->status;
  _batch.commands.push_back(std::move(c));
}

void SinkStage::add_answer(const log::Record& r, log::Producer& out) {
  core::CommandAck a;
  codec::Refusal why;
  if (!codec::read_answer(r.value, r.key, a, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  core::Command* c = nullptr;
  if (auto it = _command_index.find(a.id); it != _command_index.end()) {
    c = &_batch.commands[it->second];
  } else if (auto stored = retrying([&] { return _store->get_command(a.id); })) {
    _command_index.emplace(a.id, _batch.commands.size());
    c = &_batch.commands.emplace_back(std::move(*stored));
  }
  // Command ids can be guessed: an answer settles only a command of the car that answers.
  if (c && c->car != a.car) {
    _dead_letters.send(r, "bad_car_id", "answer of car '" + a.car + "' to a command of another car", out);
    return;
  }
  // An answer can arrive before its command: the two topics are read in no fixed order (Kafka orders
  // records within a partition only), and a car answers within milliseconds. Store the answer as a
  // nameless command; when the command comes, it is filled in and keeps the answer's status. Only under an
  // id that names the answering car (so it cannot squat another car's command id: the store would then
  // keep its status over the real command's), and only so many per car.
  if (!c) {
    if (!codec::command_id_names_car(a.id, a.car) || !room_for_early_answer(a.car, core::wall_clock_ms())) {
      _dead_letters.send(r, "unknown_command", "answer to a command not seen (or too many such answers)",
                         out);
      return;
    }
    _command_index.emplace(a.id, _batch.commands.size());
    c = &_batch.commands.emplace_back();
    c->id = a.id;
    c->car = a.car;
    c->params_json = "{}";
    c->created = a.ts;
    c->status = a.status;
    return;
  }
  // "acked" is final; a late "expired" from the twin stage does not overwrite it.
  if (c->status != "acked") c->status = a.status;
}

bool SinkStage::room_for_early_answer(const std::string& car, int64_t now) {
  auto& times = _early_answers[car];
  while (!times.empty() && times.front() < now - core::kEarlyAnswerTtlMs) times.pop_front();
  if (times.size() >= core::kMaxEarlyAnswersPerCar) return false;
  times.push_back(now);
  return true;
}

}  // namespace fleettwin::stages
