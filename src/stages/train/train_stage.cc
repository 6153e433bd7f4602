#include "stages/train/train_stage.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <utility>

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "codec/json_writer.h"
#include "core/clock.h"
#include "core/topics.h"
#include "ml/training_window.h"

namespace fleettwin::stages {

namespace t = core::topics;
namespace keys = config::keys;

std::string archive_key(const std::string& version) { return kArchiveKeyPrefix + version; }
std::string gate_key(const std::string& version) { return kGateKeyPrefix + version; }

namespace {

/// The training thread's name and priority: `top -H` tells it from the stages, and at nice kTrainingNice it
/// takes what the stage threads leave (libtorch itself runs on one thread: ml::train_model).
void become_training_thread() {
  pthread_setname_np(pthread_self(), "ft-trainer");
  // NOLINTNEXTLINE(misc-include-cleaner): gettid is in <unistd.h> (glibc 2.30)
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kTrainingNice) != 0)
    spdlog::warn("trainer: could not lower the training thread's priority");
}

template <class T>
bool ready(const std::future<T>& f) {
  return f.valid() && f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

/// The gate record of a candidate: its trial, the verdict and what became of it.
std::string gate_json(const std::string& version, const std::string& parent, const ml::TrialResult* trial,
                      const ml::PromotionDecision& d, bool auto_promote, bool promoted) {
  std::string out;
  codec::JsonWriter w(out);
  w.begin_object().key("version").string(version).key("parent").string(parent);
  w.key("mode").string(auto_promote ? "auto" : "manual").key("passed").boolean(d.promote);
  w.key("promoted").boolean(promoted).key("decided_ms").integer(core::wall_clock_ms());
  w.key("reasons").begin_array();
  for (const auto& r : d.reasons) w.string(r);
  w.end_array();
  if (trial) w.key("trial").raw(trial->to_json());
  w.end_object();
  return out;
}

}  // namespace

const StageDescriptor& TrainStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "trainer",
      {t::kTelemetry, t::kModels},
      {t::kModels, t::kModelsDlq, t::kTelemetryDlq},
      {&keys::ml_train_window, &keys::ml_train_max_events, &keys::ml_retrain_every, &keys::ml_shadow_period,
       &keys::ml_promotion, &keys::ml_raise_k, &keys::ml_window_n, &keys::ml_clear_m,
       &keys::ml_firmware_grace, &keys::ml_new_symptom_settle, &keys::ml_skip_unfamiliar,
       &keys::ml_promotion_margin_false_alerts, &keys::ml_promotion_margin_missed_alerts,
       &keys::ml_promotion_margin_unfamiliar, &keys::ml_promotion_margin_disagreement,
       &keys::ml_promotion_margin_signal_false_alerts, &keys::ml_train_leave_out_alerted},
      "keeps a sliding window of telemetry, trains candidate models on a schedule and on request (off the "
      "stage threads, at a lower priority), runs each in shadow and promotes it when the promotion gate "
      "passes it; one for the fleet",
      "telemetry -> candidate models, shadow trials, promotions on fleet.models",
      {},
      // Training data is derived: on the embedded log a trainer that falls behind skips (counted) rather
      // than hold ingestion back.
      true};
  return kDescriptor;
}

TrainStage::TrainStage(Options options, std::shared_ptr<ModelSlot> models, CandidateTrainer train,
                       PromotionGate gate, core::Metrics& metrics, registry::TelemetryReader reader)
    : _options(std::move(options)),
      _models(models ? std::move(models) : std::make_shared<ModelSlot>()),
      _train(std::move(train)),
      _gate(std::move(gate)),
      _reader(std::move(reader)),
      _dead_letters(metrics, "trainer"),
      _read(metrics.counter("fleettwin_trainer_events_total", "Telemetry events the trainer read")),
      _evicted(metrics.counter("fleettwin_trainer_evicted_total",
                               "Events the trainer dropped or skipped beyond ml.train_max_events")),
      _trained(metrics.counter("fleettwin_trainer_candidates_total", "Candidate models trained")),
      _failed(metrics.counter("fleettwin_trainer_failures_total", "Trainings that failed")),
      _promoted(metrics.counter("fleettwin_trainer_promotions_total", "Candidates promoted to active")),
      _refused(metrics.counter("fleettwin_trainer_refusals_total", "Candidates the promotion gate refused")),
      _window_gauge(metrics.gauge("fleettwin_trainer_window_events", "Events in the training window")) {}

TrainStage::~TrainStage() {
  // The futures' destructors wait for the training thread: it gives up at its next minibatch.
  _stop.request_stop();
}

std::shared_ptr<const ml::Model> TrainStage::active_model() {
  std::shared_ptr<const ml::Model> active, shadow;
  if (_models->take(_models_generation, active, shadow)) _active = std::move(active);
  return _active;
}

void TrainStage::send(log::Producer& out, const std::string& key, std::string value) {
  log::OutRecord rec;
  rec.topic = t::kModels;
  rec.key = key;
  rec.value = std::move(value);
  out.send(std::move(rec));
}

void TrainStage::add_event(core::Telemetry e) {
  _read.add();
  _newest_ts = std::max(_newest_ts, e.ts);
  if (_next_due_ts < 0 && _options.retrain_every_ms > 0) _next_due_ts = e.ts + _options.retrain_every_ms;
  if (_candidate.model && !_judging.valid()) {  // on trial: the traffic the candidate is judged on
    if (_trial.size() < _options.max_events)
      _trial.push_back(e);
    else
      _evicted.add();
  }
  _window.push_back(std::move(e));
  while (!_window.empty() && _window.front().ts < _newest_ts - _options.window_ms) _window.pop_front();
  while (_window.size() > _options.max_events) {
    _window.pop_front();
    _evicted.add();
  }
}

void TrainStage::read_request(const log::Record& r, log::Producer& out) {
  codec::RetrainRequest req;
  std::string error;
  if (!codec::parse_retrain_request(r.value, req, &error)) {
    _dead_letters.send(r, "bad_retrain_request", error, out);
    return;
  }
  spdlog::info("trainer: retrain requested ({}{}{})", req.reason, req.detail.empty() ? "" : ": ", req.detail);
  _pending = std::move(req);  // one candidate at a time: requests meanwhile become one
}

void TrainStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  for (const auto& r : batch) {
    if (r.topic == t::kModels) {
      if (r.key == kModelKeyRetrain) read_request(r, out);
      continue;  // models: the ModelWatcher's
    }
    if (r.topic != t::kTelemetry) continue;
    core::Telemetry tel;
    std::string error;
    if (_reader.read(r.value, tel, &error))
      add_event(std::move(tel));
    else  // as every stage does (DESIGN.md §4); told apart from the score stage's by error.stage
      _dead_letters.send(r, _reader.failure_reason(), error, out);
  }
  _window_gauge.set(static_cast<int64_t>(_window.size()));
  tick(out);
}

void TrainStage::tick(log::Producer& out) {
  finish_training(out);
  finish_trial(out);
  maybe_start_training();
  maybe_start_trial_end();
}

void TrainStage::maybe_start_training() {
  if (_working || !_train) return;
  TrainRequest request;
  if (_pending) {
    request.trigger = _pending->reason;
    request.detail = _pending->detail;
  } else if (_next_due_ts >= 0 && _newest_ts >= _next_due_ts) {
    request.trigger = "schedule";
  } else {
    return;
  }
  if (_window.size() < _options.min_events) return;  // a request waits for data
  _pending.reset();
  if (_options.retrain_every_ms > 0) _next_due_ts = _newest_ts + _options.retrain_every_ms;
  const auto active = active_model();
  request.parent = active ? active->meta.version : "";
  std::vector<core::Telemetry> events(_window.begin(), _window.end());
  spdlog::info("trainer: training a candidate ({}) on {} events, on a thread of its own", request.trigger,
               events.size());
  _training_request = request;
  _working = true;
  // The cars the active model has in alert are left out on the training thread: the replay costs a
  // scoring pass over the window.
  _training = std::async(
      std::launch::async,
      [train = _train, events = std::move(events), request, space = _options.space, stop = _stop.get_token(),
       active = _options.leave_out_alerted ? active : nullptr, monitor = _options.monitor]() mutable {
        become_training_thread();
        if (active) {
          const auto f = ml::leave_out_cars_in_alert(events, active, monitor, space);
          spdlog::info("trainer: {} of {} cars in alert by the active model {} at the window's end: {}",
                       f.cars_in_alert, f.cars, active->meta.version,
                       f.cars_left_out > 0 ? "left out (" + std::to_string(f.events_left_out) + " events)"
                                           : std::string("kept (none, or too many to be failures)"));
        }
        if (stop.stop_requested()) throw std::runtime_error("training stopped");
        auto data = ml::make_training_data(events, t::kTelemetry, space);
        events = {};
        if (stop.stop_requested()) throw std::runtime_error("training stopped");
        return train(std::move(data), request, stop);
      });
}

void TrainStage::finish_training(log::Producer& out) {
  if (!ready(_training)) return;
  try {
    _candidate = _training.get();
  } catch (const std::exception& e) {
    _failed.add();
    spdlog::error("trainer: training a candidate failed: {}", e.what());
    _working = false;
    return;
  }
  _trained.add();
  const auto& m = _candidate.model->meta;
  send(out, archive_key(m.version), _candidate.artifact);  // kept for rollback and the model cards
  if (!active_model()) {
    // Nothing to compare with: the first model of the fleet becomes the active one.
    spdlog::info("trainer: {} is the first model; active now", m.version);
    send(out, gate_key(m.version),
         gate_json(m.version, "", nullptr, {true, {"no active model to compare with"}}, true, true));
    send(out, kModelKeyActive, std::move(_candidate.artifact));
    _promoted.add();
    _candidate = {};
    _working = false;
    return;
  }
  spdlog::info("trainer: candidate {} in shadow for {} s of event time", m.version,
               _options.shadow_period_ms / 1000);
  send(out, kModelKeyShadow, _candidate.artifact);
  _trial.clear();
  _trial_end_ts = _newest_ts + _options.shadow_period_ms;
}

void TrainStage::maybe_start_trial_end() {
  if (!_candidate.model || _judging.valid() || _newest_ts < _trial_end_ts) return;
  _judging = std::async(std::launch::async, [active = active_model(), candidate = _candidate.model,
                                             trial = std::move(_trial), gate = _gate,
                                             monitor = _options.monitor, space = _options.space] {
    become_training_thread();
    auto result = ml::run_trial(active, candidate, trial, monitor, space);
    ml::PromotionDecision d = gate ? gate(result.input) : ml::PromotionDecision{true, {"no gate configured"}};
    return std::pair{std::move(result), std::move(d)};
  });
  _trial = {};
}

void TrainStage::finish_trial(log::Producer& out) {
  if (!ready(_judging)) return;
  const auto& m = _candidate.model->meta;
  try {
    auto [trial, decision] = _judging.get();
    const bool promoted = decision.promote && _options.auto_promote;
    std::string reasons;
    for (const auto& r : decision.reasons) reasons += (reasons.empty() ? "" : "; ") + r;
    spdlog::info("trainer: candidate {} {} by the gate{}{}", m.version,
                 decision.promote ? "passed" : "refused",
                 promoted           ? ", promoted"
                 : decision.promote ? ", left for a manual promotion"
                                    : "",
                 reasons.empty() ? "" : " (" + reasons + ")");
    send(out, gate_key(m.version),
         gate_json(m.version, m.parent, &trial, decision, _options.auto_promote, promoted));
    if (promoted) {
      send(out, kModelKeyActive, std::move(_candidate.artifact));
      send(out, kModelKeyShadow, "");  // scoring it twice, as active and as shadow, would be waste
      _promoted.add();
    } else if (!decision.promote) {
      _refused.add();
    }
  } catch (const std::exception& e) {
    _failed.add();
    spdlog::error("trainer: the shadow trial of {} failed: {}", m.version, e.what());
  }
  _candidate = {};
  _working = false;
}

TrainStage::Options train_stage_options(const config::Config& config) {
  TrainStage::Options o;
  o.monitor = monitor_options(config);
  o.window_ms = config.get(keys::ml_train_window).count();
  o.leave_out_alerted = config.get(keys::ml_train_leave_out_alerted);
  o.max_events = static_cast<std::size_t>(config.get(keys::ml_train_max_events));
  o.retrain_every_ms = config.get(keys::ml_retrain_every).count();
  o.shadow_period_ms = config.get(keys::ml_shadow_period).count();
  const std::string promotion = config.get(keys::ml_promotion);
  if (promotion != "auto" && promotion != "manual")
    throw config::ConfigError("ml.promotion must be auto or manual, not \"" + promotion + "\"");
  o.auto_promote = promotion == "auto";
  return o;
}

PromotionGate promotion_gate(const config::Config& config) {
  ml::PromotionMargins m;
  m.false_alerts = config.get(keys::ml_promotion_margin_false_alerts);
  m.missed_alerts = config.get(keys::ml_promotion_margin_missed_alerts);
  m.unfamiliar = config.get(keys::ml_promotion_margin_unfamiliar);
  m.disagreement = config.get(keys::ml_promotion_margin_disagreement);
  m.signal_false_alerts = config.get(keys::ml_promotion_margin_signal_false_alerts);
  return [m](const ml::PromotionInput& in) { return ml::promotion_gate(in, m); };
}

}  // namespace fleettwin::stages
