#include "ml/lifecycle_eval.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "ml/shadow_trial.h"

namespace fleettwin::ml {

int64_t LifecycleRun::promotions() const {
  return std::count_if(steps.begin(), steps.end(), [](const auto& s) { return s.decision.promote; });
}

namespace {

/// One monitor's anomaly alerts over a shadow period, when each was raised and cleared, and which cars it
/// had in alert, for the gate's "alerts the other did not raise". Owned by run_lifecycle's thread.
struct Tally {
  struct Raised {
    std::string car;
    int64_t ts = 0, cleared = -1;  // cleared -1: still open
    std::string signal;            // its first (top contributing) signal
  };
  std::unordered_set<std::string> open;      // cars with an anomaly alert open, all along
  std::unordered_set<std::string> in_alert;  // cars with one open at the period's start or raised in it
  std::vector<Raised> raised;                // each alert raised in the period
  std::unordered_set<std::string> cars;      // cars that sent events in the period (the live one's only)
  int64_t events = 0, unfamiliar_at_start = 0;

  void start(int64_t unfamiliar) {
    in_alert = open;
    raised.clear();
    cars.clear();
    events = 0;
    unfamiliar_at_start = unfamiliar;
  }
  void alert(const core::Alert& a) {
    if (a.kind != kAlertAnomaly) return;
    if (!a.raised) {
      open.erase(a.car);
      // The car's alerts of the period clear together (a second symptom's alert with the first).
      for (auto& r : raised)
        if (r.car == a.car && r.cleared < 0) r.cleared = a.ts;
      return;
    }
    open.insert(a.car);
    in_alert.insert(a.car);
    raised.push_back({a.car, a.ts, -1, a.signals.empty() ? std::string() : a.signals.front()});
  }
};

ShadowSummary summarize(const Tally& self, const Tally& other, int64_t unfamiliar_now, double car_hours,
                        int64_t end, int64_t sustained_ms) {
  ShadowSummary s;
  s.events = self.events;
  s.alerts = static_cast<int64_t>(self.raised.size());
  for (const auto& r : self.raised)
    if (other.in_alert.count(r.car) == 0) count_disputed(s, r.ts, r.cleared, end, sustained_ms, r.signal);
  s.unfamiliar_events = unfamiliar_now - self.unfamiliar_at_start;
  s.car_hours = car_hours;
  return s;
}

/// Share of events after which both models had the car in alert or neither, over the cars not both had in
/// alert during the period: on a failure both found, when each raises and clears is timing, not judgement.
double agreement(const std::unordered_map<std::string, std::pair<int64_t, int64_t>>& differ,
                 const std::unordered_set<std::string>& a, const std::unordered_set<std::string>& b) {
  int64_t same = 0, events = 0;
  for (const auto& [car, c] : differ) {
    if (a.contains(car) && b.contains(car)) continue;
    same += c.second - c.first;
    events += c.second;
  }
  return events > 0 ? static_cast<double>(same) / static_cast<double>(events) : 1;
}

/// Events of [from, to) of `events` (sorted by ts).
std::vector<core::Telemetry> span(const std::vector<core::Telemetry>& events, int64_t from, int64_t to) {
  auto by_ts = [](const core::Telemetry& e, int64_t ts) { return e.ts < ts; };
  const auto first = std::lower_bound(events.begin(), events.end(), from, by_ts);
  const auto last = std::lower_bound(first, events.end(), to, by_ts);
  return {first, last};
}

/// The protocol's state between boundaries: the live monitor (the report's alerts), the shadow one (the
/// candidate, or the active model while there is none, so that its per-car alert state stays comparable).
class Protocol {
 public:
  Protocol(const std::vector<core::Telemetry>& events, const LifecycleTrainer& train,
           const LifecycleOptions& options, LifecycleRun& run)
      : _events(events), _train(train), _o(options), _run(run) {
    const int64_t t0 = events.front().ts;
    _active = _train(span(events, t0, t0 + _o.retrain_every_ms), "lc1");
    _live = std::make_unique<Monitor>(_o.monitor, _active->meta.architecture.space);
    _shadow = std::make_unique<Monitor>(_o.monitor, _active->meta.architecture.space);
  }

  void event(const core::Telemetry& e) {
    _batch.push_back(e);
    if (_batch.size() == 5000) flush();
  }

  void flush() {
    if (_batch.empty()) return;
    _lout.clear();
    _sout.clear();
    _live->process(_batch, _lout);
    _shadow->process(_batch, _sout);
    _lstate.clear();
    _sstate.clear();
    _live_states.follow(_lout, _lstate);
    _shadow_states.follow(_sout, _sstate);
    if (_candidate && _lstate.size() == _batch.size() && _sstate.size() == _batch.size()) {
      for (std::size_t i = 0; i < _batch.size(); ++i) {
        auto& c = _differ[_batch[i].car];
        c.first += _lstate[i] != _sstate[i];
        ++c.second;
        _lt.cars.insert(_batch[i].car);
      }
      _lt.events += static_cast<int64_t>(_batch.size());
      _st.events = _lt.events;
    }
    for (auto& a : _lout.alerts) {
      _lt.alert(a);
      if (a.ts >= _run.scoring_from) _run.alerts.push_back(std::move(a));
    }
    for (auto& a : _sout.alerts) {
      _st.alert(a);
      if (_candidate) _step.candidate_alerts.push_back(std::move(a));
    }
    _batch.clear();
  }

  /// Event time `b` reached: the k-th multiple of retrain_every after the first event.
  void boundary(int64_t b, int k) {
    flush();
    if (k == 1) {  // the first model starts; the first candidate needs data it has not seen
      _live->set_model(_active);
      _shadow->set_model(_active);
      return;
    }
    if (_candidate) judge(b);
    const int64_t t0 = _events.front().ts;
    if (b + _o.retrain_every_ms > _events.back().ts) {
      _shadow->set_model(_active);
      return;
    }
    _step = {};
    _step.trained_on_from = std::max(t0, b - _o.train_window_ms);
    _step.trained_on_to = b;
    auto window = span(_events, _step.trained_on_from, b);
    if (_o.leave_out_alerted)
      _step.filter = leave_out_cars_in_alert(window, _active, _o.monitor, _active->meta.architecture.space);
    _step.training_events = static_cast<int64_t>(window.size());
    _candidate = _train(window, "lc" + std::to_string(++_trained));
    _step.candidate = _candidate->meta.version;
    _step.shadow_from = b;
    _shadow->set_model(_candidate);
    _lt.start(_live->unfamiliar_events());
    _st.start(_shadow->unfamiliar_events());
    _differ.clear();
  }

  int64_t live_unfamiliar() const { return _live->unfamiliar_events(); }

 private:
  void judge(int64_t b) {
    _step.shadow_to = b;
    // Both saw the same cars; a car that sent anything counts for the whole period.
    const double car_hours =
        static_cast<double>(_lt.cars.size()) * static_cast<double>(b - _step.shadow_from) / 3.6e6;
    _step.active = summarize(_lt, _st, _live->unfamiliar_events(), car_hours, b, _o.margins.sustained_ms);
    _step.candidate_summary =
        summarize(_st, _lt, _shadow->unfamiliar_events(), car_hours, b, _o.margins.sustained_ms);
    _step.agreement = agreement(_differ, _lt.in_alert, _st.in_alert);
    _step.decision = promotion_gate({_step.active, _step.candidate_summary, _step.agreement}, _o.margins);
    if (_step.decision.promote) {
      _active = _candidate;
      _live->set_model(_active);
    }
    if (_o.progress) {
      std::string line = _step.candidate + (_step.decision.promote ? " promoted" : " kept as a candidate");
      line += ": " + (_step.decision.reasons.empty() ? std::string() : _step.decision.reasons.front());
      for (std::size_t i = 1; i < _step.decision.reasons.size(); ++i)
        line += "; " + _step.decision.reasons[i];
      _o.progress(line);
    }
    _run.steps.push_back(std::move(_step));
    _step = {};
    _candidate.reset();
  }

  const std::vector<core::Telemetry>& _events;
  const LifecycleTrainer& _train;
  const LifecycleOptions& _o;
  LifecycleRun& _run;
  std::shared_ptr<const Model> _active, _candidate;
  std::unique_ptr<Monitor> _live, _shadow;
  std::vector<core::Telemetry> _batch;
  MonitorOutput _lout, _sout;
  AlertStates _live_states, _shadow_states;  // which cars each monitor has in alert, for the agreement
  std::vector<uint8_t> _lstate, _sstate;     // the batch's alert states, event by event
  Tally _lt, _st;
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> _differ;  // car -> events differing, events
  int _trained = 1;  // models trained so far, the first one included: names them lc1, lc2, ...
  LifecycleStep _step;
};

}  // namespace

LifecycleRun run_lifecycle(const std::vector<core::Telemetry>& events, const LifecycleTrainer& train,
                           const LifecycleOptions& options) {
  if (options.retrain_every_ms <= 0 || options.train_window_ms <= 0)
    throw std::invalid_argument("retrain_every and train_window must be positive");
  if (events.empty() || events.back().ts - events.front().ts < 2 * options.retrain_every_ms)
    throw std::invalid_argument("the history is shorter than twice retrain_every");
  LifecycleRun run;
  run.scoring_from = events.front().ts + options.retrain_every_ms;
  Protocol p(events, train, options, run);
  int64_t next = run.scoring_from;
  int k = 1;
  int64_t unfamiliar_from = 0;
  for (const auto& e : events) {
    while (e.ts >= next) {
      p.boundary(next, k);
      if (k == 1) unfamiliar_from = p.live_unfamiliar();
      next += options.retrain_every_ms;
      ++k;
    }
    p.event(e);
  }
  p.flush();
  run.unfamiliar_events = p.live_unfamiliar() - unfamiliar_from;
  return run;
}

}  // namespace fleettwin::ml
