#include "stages/score/score_stage.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>

#include "codec/json.h"
#include "codec/json_writer.h"
#include "codec/schemas.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "stages/record_checks.h"

namespace fleettwin::stages {

namespace t = core::topics;

void ModelSlot::set_active(std::shared_ptr<const ml::Model> m) {
  std::lock_guard lock(_mu);
  _active = std::move(m);
  ++_generation;
}

void ModelSlot::set_shadow(std::shared_ptr<const ml::Model> m) {
  std::lock_guard lock(_mu);
  _shadow = std::move(m);
  ++_generation;
}

bool ModelSlot::take(uint64_t& generation, std::shared_ptr<const ml::Model>& active,
                     std::shared_ptr<const ml::Model>& shadow) const {
  std::lock_guard lock(_mu);
  if (generation == _generation) return false;
  generation = _generation;
  active = _active;
  shadow = _shadow;
  return true;
}

ModelWatcher::ModelWatcher(log::Log& log, std::shared_ptr<ModelSlot> slot, ModelDecoder decode,
                           core::Metrics& metrics)
    : _log(log),
      _slot(std::move(slot)),
      _decode(std::move(decode)),
      _loaded(metrics.counter(core::metric::kModelsLoaded)),
      _bad(metrics.counter(core::metric::kModelsRejected)) {}

ModelWatcher::~ModelWatcher() { stop(); }

void ModelWatcher::start() {
  _thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "ft-models");
    try {
      run();
    } catch (const std::exception& e) {
      spdlog::error("model watcher stopped: {}", e.what());
    }
  });
}

void ModelWatcher::stop() {
  _stop = true;
  if (_thread.joinable()) _thread.join();
}

void ModelWatcher::run() {
  // A group of its own that never commits: every start reads the compacted topic from its beginning and
  // so finds the newest model of each key.
  const auto now = std::chrono::system_clock::now().time_since_epoch().count();
  auto consumer =
      _log.consumer("fleettwin.score.models." + std::to_string(::getpid()) + "." + std::to_string(now));
  consumer->subscribe({t::kModels});
  while (!_stop) {
    for (const auto& r : consumer->poll(16, std::chrono::milliseconds(200))) {
      // Another model family, or a retrain request (kModelKeyRetrain): not an artifact.
      if (r.key != kModelKeyActive && r.key != kModelKeyShadow) continue;
      if (r.key == kModelKeyShadow && r.value.empty()) {  // no shadow any more (its candidate was promoted)
        _slot->set_shadow(nullptr);
        continue;
      }
      try {
        auto model = _decode(r.value);
        spdlog::info("score: loaded model {} ({}) from {}/{}", model->meta.version, r.key, r.partition,
                     r.offset);
        if (r.key == kModelKeyActive)
          _slot->set_active(std::move(model));
        else
          _slot->set_shadow(std::move(model));
        _loaded.add();
      } catch (const std::exception& e) {
        _bad.add();
        spdlog::warn("score: fleet.models {}/{} key {} is not a usable model: {}", r.partition, r.offset,
                     r.key, e.what());
      }
    }
  }
  consumer->close();
}

const StageDescriptor& ScoreStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "score",
      {t::kTelemetry},
      {t::kScores, t::kAlerts, t::kCommands, t::kModels, dlq_of(t::kTelemetry)},
      {&config::keys::ml_warmup, &config::keys::ml_warmup_in_role, &config::keys::ml_raise_k,
       &config::keys::ml_window_n, &config::keys::ml_clear_m, &config::keys::ml_firmware_grace,
       &config::keys::ml_new_symptom_settle, &config::keys::ml_skip_unfamiliar,
       &config::keys::ml_drift_window, &config::keys::ml_drift_threshold, &config::keys::ml_drift_for,
       &config::keys::ml_drift_cooldown},
      "scores every event with the anomaly model (loaded from fleet.models, or trained after a warm-up), "
      "raises and clears alerts with per-car hysteresis and asks failing cars to schedule a service",
      "telemetry -> anomaly scores, alerts, service commands",
      {{"--train-warmup", &config::keys::ml_warmup_in_role,
        "Train a first model after ml.warmup when fleet.models has none (default: wait for one)"}},
      // Scores are derived data: on the embedded log a score stage that falls behind (scoring held events,
      // a slow model) is evicted past and counts what it skipped, rather than stopping ingestion.
      true};
  return kDescriptor;
}

ScoreStage::ScoreStage(Options options, std::shared_ptr<ModelSlot> slot, core::Metrics& metrics,
                       registry::TelemetryReader reader, WarmupTrainer trainer)
    : _options(std::move(options)),
      _slot(slot ? std::move(slot) : std::make_shared<ModelSlot>()),
      _reader(std::move(reader)),
      _trainer(std::move(trainer)),
      _monitor(_options.monitor, _options.space),
      _scored(metrics.counter(core::metric::kScoreScored)),
      _unscored(metrics.counter(core::metric::kScoreUnscored)),
      _unfamiliar(metrics.counter("fleettwin_score_unfamiliar_total",
                                  "Anomalous events in conditions the model never saw (raise no alert)")),
      _bad(metrics.counter(core::metric::kScoreUndecodable)),
      _dead_letters(metrics, "score"),
      _alerts_raised(metrics.counter(core::metric::kAlerts, core::metric::kAlertRaised)),
      _alerts_cleared(metrics.counter(core::metric::kAlerts, core::metric::kAlertCleared)),
      _swaps(metrics.counter("fleettwin_score_model_swaps_total", "Times the score stage switched models")),
      _metrics(metrics),
      _drift(_options.drift_window),
      _drift_alarm(_options.drift_threshold, _options.drift_for_ms, _options.drift_cooldown_ms),
      _drift_psi_max(metrics.fixed_point_gauge(core::metric::kDriftPsiMax, "", core::metric::kDriftDecimals)),
      _retrain_requests(metrics.counter(core::metric::kDriftRetrainRequests)) {}

void ScoreStage::pick_up_models() {
  std::shared_ptr<const ml::Model> active, shadow;
  if (!_slot->take(_generation, active, shadow)) return;
  if (active.get() != _monitor.model()) _swaps.add();
  // Between batches: the batch before this one was scored entirely by the old model, the next one will be
  // scored entirely by the new one, and per-car state (features, alerts) carries over.
  if (active) _monitor.set_model(std::move(active));
  _monitor.set_shadow(std::move(shadow));
}

namespace {

/// Lowers the calling thread's scheduling priority (Linux: per-thread nice), so training takes what the
/// stage threads leave: at nice 10 it gets about a tenth of a core they all want, and all of an idle one.
void lower_this_thread_priority() {
  // NOLINTNEXTLINE(misc-include-cleaner): gettid is in <unistd.h> (glibc 2.30)
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kTrainingNice) != 0)
    spdlog::warn("score: could not lower the training thread's priority");
}

}  // namespace

void ScoreStage::warm_up() {
  if (!_trainer || _trained || _monitor.model()) return;
  for (const auto& e : _events) {
    if (_warmup_first_ts < 0) _warmup_first_ts = e.ts;
    if (_warmup.size() < _options.warmup_max_events) _warmup.push_back(e);
  }
  if (_warmup.empty() || _warmup.back().ts - _warmup_first_ts < _options.warmup_ms) return;
  _trained = true;
  spdlog::info("score: training a first model on {} warm-up events, on a thread of its own", _warmup.size());
  // Off this thread: the stage keeps reading (so the log never holds records back for it) and keeps the
  // events that arrive meanwhile, to score them once the model exists (finish_training).
  _training =
      std::async(std::launch::async, [trainer = _trainer, events = std::move(_warmup), space = _options.space,
                                      stop = _training_stop.get_token()]() mutable {
        // Its own name: a profile or `top -H` tells training from scoring (the name is inherited otherwise).
        pthread_setname_np(pthread_self(), "ft-train");
        lower_this_thread_priority();
        auto data = ml::make_training_data(events, t::kTelemetry, space);
        if (stop.stop_requested()) throw std::runtime_error("training stopped");
        return trainer(std::move(data), stop);
      });
  _busy = true;
  _warmup = {};
}

ScoreStage::~ScoreStage() {
  // The future's destructor waits for the training thread: it gives up at its next minibatch.
  _training_stop.request_stop();
}

void ScoreStage::flush_state(log::Producer& /*out*/) {
  if (!_training.valid() || !_training_stop.stop_requested()) return;
  // Stopping while the first model trains: it stops within a minibatch, and the events held for it go
  // unscored (counted) rather than keep the process waiting for a model it will not use.
  try {
    _training.get();
  } catch (const std::exception& e) {
    spdlog::info("score: warm-up training stopped ({}); {} held events unscored", e.what(), _held.size());
  }
  _unscored.add(static_cast<int64_t>(_held.size()));
  _held = {};
  _busy = false;
}

void ScoreStage::finish_training(log::Producer& out) {
  if (!_training.valid() || _training.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
  try {
    auto trained = _training.get();
    spdlog::info("score: trained {} on warm-up data, threshold {:.4g}; scoring the {} events held meanwhile",
                 trained.model->meta.version, trained.model->meta.threshold, _held.size());
    _slot->set_active(trained.model);
    log::OutRecord rec;
    rec.topic = t::kModels;
    rec.key = kModelKeyActive;
    rec.value = std::move(trained.artifact);
    out.send(std::move(rec));
  } catch (const std::exception& e) {
    // Not fatal: the stage keeps the rule alerts and waits for a model on fleet.models.
    spdlog::error("score: warm-up training failed: {}", e.what());
  }
  pick_up_models();
  // In arrival order, so each car's events are scored in order; in slices, to bound the output buffers.
  constexpr std::size_t kSlice = 10'000;
  for (std::size_t i = 0; i < _held.size(); i += kSlice) {
    const auto end = _held.begin() + static_cast<std::ptrdiff_t>(std::min(_held.size(), i + kSlice));
    _events.assign(std::make_move_iterator(_held.begin() + static_cast<std::ptrdiff_t>(i)),
                   std::make_move_iterator(end));
    score(out);
  }
  _held = {};
  _events.clear();
  _busy = false;
}

void ScoreStage::hold() {
  const std::size_t room = _options.held_max_events - std::min(_options.held_max_events, _held.size());
  const std::size_t kept = std::min(room, _events.size());
  _held.insert(_held.end(), std::make_move_iterator(_events.begin()),
               std::make_move_iterator(_events.begin() + static_cast<std::ptrdiff_t>(kept)));
  _unscored.add(static_cast<int64_t>(_events.size() - kept));
}

void ScoreStage::score(log::Producer& out) {
  _out.clear();
  _monitor.process(_events, _out);
  if (_monitor.model())
    _scored.add(static_cast<int64_t>(_events.size()));
  else
    _unscored.add(static_cast<int64_t>(_events.size()));
  _unfamiliar.add(_monitor.unfamiliar_events() - _unfamiliar_seen);
  _unfamiliar_seen = _monitor.unfamiliar_events();
  // Which events leave their car in alert: on their scores (the event's status, core::score_status) and for
  // the drift window. Shadow scores carry none: the shadow model never alerts.
  _in_alert.clear();
  _alert_states.follow(_out, _in_alert);
  if (_in_alert.size() == _out.scores.size())
    for (std::size_t i = 0; i < _out.scores.size(); ++i) _out.scores[i].in_alert = _in_alert[i] != 0;
  write(_out, out);
  watch_drift(out);
}

void ScoreStage::watch_drift(log::Producer& out) {
  const ml::Model* model = _monitor.model();
  if (model != _drift_model) {
    // A new model: its own references, a window that starts empty (its bins meant the old cut points).
    _drift_model = model;
    for (auto* g : _drift_psi) g->set(0);
    _drift_psi.clear();
    _drift.reset(model ? model->meta.drift : std::vector<ml::DriftReference>{});
    for (const auto& r : _drift.references())
      _drift_psi.push_back(&_metrics.fixed_point_gauge(core::metric::kDriftPsi, "signal=\"" + r.signal + "\"",
                                                       core::metric::kDriftDecimals));
    _drift_psi_max.set(0);
  }
  if (_drift.references().empty() || _events.empty()) return;
  // Events of cars in alert stay out: drift is the move of the conditions the model calls healthy.
  const bool states = _in_alert.size() == _events.size();
  // The stage's event-time clock: the newest event seen, so partitions read unevenly never turn it back.
  for (std::size_t i = 0; i < _events.size(); ++i) {
    if (!states || _in_alert[i] == 0) _drift.add(_events[i]);
    _drift_clock = std::max(_drift_clock, _events[i].ts);
  }
  const int64_t now = _drift_clock;
  const auto& psi = _drift.compute();
  double worst = -1;
  std::size_t worst_signal = 0;
  const double unit = std::pow(10.0, core::metric::kDriftDecimals);
  for (std::size_t i = 0; i < psi.size(); ++i) {
    if (psi[i] < 0) continue;  // too few values of it in the window yet
    _drift_psi[i]->set(std::llround(psi[i] * unit));
    if (psi[i] > worst) worst = psi[i], worst_signal = i;
  }
  _drift_psi_max.set(worst > 0 ? std::llround(worst * unit) : 0);
  if (!_drift_alarm.update(worst, now)) return;
  const auto& signal = _drift.references()[worst_signal].signal;
  spdlog::warn("score: drift: {} has PSI {:.3f} (> {}) against model {}; asking for a retraining", signal,
               worst, _drift_alarm.threshold(), model->meta.version);
  log::OutRecord rec;
  rec.topic = t::kModels;
  rec.key = kModelKeyRetrain;
  codec::JsonWriter w(rec.value);
  w.begin_object().key("reason").string("drift").key("detail").begin_object();
  w.key("signal").string(signal).key("psi").number(worst).key("threshold").number(_drift_alarm.threshold());
  w.key("model").string(model->meta.version).end_object();
  w.key("ts").integer(now).end_object();
  out.send(std::move(rec));
  _retrain_requests.add();
}

void ScoreStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  pick_up_models();
  finish_training(out);
  _events.clear();
  for (const auto& r : batch) {
    if (r.topic != t::kTelemetry) continue;
    core::Telemetry tel;
    std::string error;
    if (!_reader.read(r.value, tel, &error)) {
      _bad.add();
      _dead_letters.send(r, _reader.failure_reason(), error, out);
      continue;
    }
    if (codec::Refusal why; !key_matches(r, tel.car, why)) {  // its alert would go to another car
      _bad.add();
      _dead_letters.send(r, why.reason, why.detail, out);
      continue;
    }
    _events.push_back(std::move(tel));
  }
  if (_events.empty()) return;
  if (_training.valid()) {  // the first model is training: keep the events for it
    hold();
    return;
  }
  score(out);
  warm_up();  // after this batch, so the batch that completes the warm-up is not scored twice
  pick_up_models();
}

void ScoreStage::tick(log::Producer& out) {
  pick_up_models();
  finish_training(out);
}

void ScoreStage::write(const ml::MonitorOutput& o, log::Producer& out) {
  for (const auto& s : o.scores) {
    log::OutRecord rec;
    rec.topic = t::kScores;
    rec.key = s.car;
    codec::encode_avro_anomaly_score(s, _options.score_schema_id, rec.value);
    out.send(std::move(rec));
  }
  for (const auto& s : o.shadow_scores) {
    log::OutRecord rec;
    rec.topic = t::kScores;
    rec.key = s.car;
    rec.headers.push_back({kHeaderModelRole, "shadow"});
    codec::encode_avro_anomaly_score(s, _options.score_schema_id, rec.value);
    out.send(std::move(rec));
  }
  for (const auto& a : o.alerts) {
    (a.raised ? _alerts_raised : _alerts_cleared).add();
    log::OutRecord rec;
    rec.topic = t::kAlerts;
    rec.key = a.car;
    codec::encode_avro_alert(a, _options.alert_schema_id, rec.value);
    out.send(std::move(rec));
    if (!a.raised) continue;
    core::Command c;
    c.id = "service:" + a.id;  // deterministic: a replayed alert asks once
    c.car = a.car;
    c.name = "schedule_service";
    codec::JsonWriter w(c.params_json);
    w.begin_object().key("alert").string(a.id).key("kind").string(a.kind).key("signals").begin_array();
    for (const auto& s : a.signals) w.string(s);
    w.end_array().key("score").number(a.score).key("threshold").number(a.threshold).end_object();
    c.created = a.ts;
    c.expires = a.ts + _options.service_expires_ms;
    log::OutRecord cmd;
    cmd.topic = t::kCommands;
    cmd.key = a.car;
    cmd.value = codec::command_to_json(c);
    out.send(std::move(cmd));
  }
}

ml::MonitorOptions monitor_options(const config::Config& config) {
  ml::MonitorOptions o;
  o.rule.raise_k = static_cast<int>(config.get(config::keys::ml_raise_k));
  o.rule.window_n = static_cast<int>(config.get(config::keys::ml_window_n));
  o.rule.clear_m = static_cast<int>(config.get(config::keys::ml_clear_m));
  if (o.rule.raise_k > o.rule.window_n)
    throw config::ConfigError("ml.raise_k (" + std::to_string(o.rule.raise_k) +
                              ") cannot exceed ml.window_n (" + std::to_string(o.rule.window_n) + ")");
  o.firmware_grace_ms = config.get(config::keys::ml_firmware_grace).count();
  o.new_symptom_settle_ms = config.get(config::keys::ml_new_symptom_settle).count();
  o.skip_unfamiliar = config.get(config::keys::ml_skip_unfamiliar);
  return o;
}

}  // namespace fleettwin::stages
