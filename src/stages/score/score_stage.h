#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/metrics.h"
#include "log/log.h"
#include "ml/dataset.h"
#include "ml/drift.h"
#include "ml/monitor.h"
#include "ml/shadow_trial.h"
#include "registry/telemetry_reader.h"
#include "stages/dead_letters.h"
#include "stages/stage.h"

namespace fleettwin::stages {

/// fleet.models keys: the active model and a candidate scored in shadow.
inline constexpr const char* kModelKeyActive = "anomaly";
inline constexpr const char* kModelKeyShadow = "anomaly.shadow";
/// fleet.models key of a request to retrain (JSON {"reason","detail","ts"}), not an artifact: the lifecycle
/// consumes it, the ModelWatcher passes it by.
inline constexpr const char* kModelKeyRetrain = "retrain.request";
/// Header on fleet.scores records of the shadow model; consumers of health ignore those records.
inline constexpr const char* kHeaderModelRole = "model.role";

/// The models the score stage should use, set by whoever loads them (the ModelWatcher thread, or the
/// stage itself after its warm-up training) and picked up by the stage between batches, so a swap never
/// splits a batch or loses an event. Thread-safe.
class ModelSlot {
 public:
  void set_active(std::shared_ptr<const ml::Model> m);
  void set_shadow(std::shared_ptr<const ml::Model> m);
  /// Models newer than `generation`; false when nothing changed.
  bool take(uint64_t& generation, std::shared_ptr<const ml::Model>& active,
            std::shared_ptr<const ml::Model>& shadow) const;

 private:
  mutable std::mutex _mu;
  std::shared_ptr<const ml::Model> _active, _shadow;
  uint64_t _generation = 0;
};

/// Turns artifact bytes into a model (ml::decode_artifact, which lives in the libtorch library: the stage
/// library stays free of it). Throws std::invalid_argument for bad bytes.
using ModelDecoder = std::function<std::shared_ptr<const ml::Model>(std::string_view)>;

/// Scheduling niceness of the warm-up training thread: it takes what the stage threads leave.
inline constexpr int kTrainingNice = 10;

/// A model trained by the stage itself and its artifact bytes, to publish on fleet.models.
struct TrainedModel {
  std::shared_ptr<const ml::Model> model;
  std::string artifact;
};
/// Trains a model on warm-up data; runs on a thread of its own at a lower priority (kTrainingNice), while
/// the score stage goes on reading. Gives up (throws) soon after `stop` is requested: the stage is stopping.
using WarmupTrainer = std::function<TrainedModel(ml::TrainingData, std::stop_token stop)>;

/// Follows the compacted fleet.models topic from its beginning, in a group of its own, on its own thread,
/// and puts every decodable artifact into a ModelSlot (key "anomaly": active; "anomaly.shadow": shadow; an
/// empty "anomaly.shadow" value: no shadow model). A bad artifact is counted and logged, and the previous
/// model stays.
class ModelWatcher {
 public:
  ModelWatcher(log::Log& log, std::shared_ptr<ModelSlot> slot, ModelDecoder decode, core::Metrics& metrics);
  ~ModelWatcher();
  void start();
  void stop();

 private:
  void run();
  log::Log& _log;
  std::shared_ptr<ModelSlot> _slot;
  ModelDecoder _decode;
  core::Counter& _loaded;
  core::Counter& _bad;
  std::atomic<bool> _stop{false};
  std::thread _thread;
};

/// The score stage: reads fleet.telemetry, scores every event in batches (ml::Monitor), writes one
/// AnomalyScore per event to fleet.scores (plus one per event from a shadow model, marked by a header),
/// raises and clears alerts on fleet.alerts with per-car hysteresis, and sends a schedule_service command to
/// fleet.commands for every raised alert. Before it has a model it can train one itself from the first
/// `warmup_ms` of event time (the `up` demo), on a thread of its own at a lower priority: the stage keeps
/// reading meanwhile, so the log never holds records back for it, and keeps the events that arrive while the
/// model trains (at most `held_max_events`, in memory) to score them, in order, once it exists; events
/// before the warm-up ends, beyond that bound, held when the stage is stopped (which stops the training
/// within a minibatch), or skipped because the stage fell a partition's capacity behind on the embedded log
/// (its descriptor says may_lag) are counted as unscored (`fleettwin_score_unscored_total`). Later models
/// (`fleettwin train`, hot reload) are decoded on the ModelWatcher's thread, never trained here. Runs on its
/// runner's thread; interrupt() from any thread.
class ScoreStage final : public Stage {
 public:
  struct Options {
    ml::MonitorOptions monitor;
    /// The features of the catalog the stage's events carry (models must read them: decode_artifact with
    /// the same space, else set_model refuses them).
    std::shared_ptr<const ml::FeatureSpace> space = ml::FeatureSpace::builtin();
    int32_t score_schema_id = 0;
    int32_t alert_schema_id = 0;
    int64_t warmup_ms = 0;  ///< 0: never train, wait for fleet.models
    std::size_t warmup_max_events = 2'000'000;
    std::size_t held_max_events = 2'000'000;  ///< events kept while the first model trains (~0.5 GB)
    int64_t service_expires_ms =
        int64_t{7} * 24 * 3'600'000;  ///< schedule_service commands expire after this
    /// Drift watch (ml.drift_*): live events compared, PSI that asks for a retraining, for how long (event
    /// time), and at most once per cooldown.
    std::size_t drift_window = 20'000;
    double drift_threshold = 0.25;
    int64_t drift_for_ms = int64_t{15} * 60'000;
    int64_t drift_cooldown_ms = int64_t{6} * 3'600'000;
  };
  ScoreStage(Options options, std::shared_ptr<ModelSlot> slot, core::Metrics& metrics,
             registry::TelemetryReader reader = registry::TelemetryReader(), WarmupTrainer trainer = nullptr);
  ~ScoreStage() override;
  ScoreStage(const ScoreStage&) = delete;
  ScoreStage& operator=(const ScoreStage&) = delete;
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void tick(log::Producer& out) override;
  /// Any thread (tests read it while the runner runs).
  bool busy() const override { return _busy.load(); }
  void skipped(int64_t count) override { _unscored.add(count); }
  /// Stops a warm-up training in progress (it gives up at its next minibatch); what it held is counted as
  /// unscored at the runner's final commit.
  void interrupt() override { _training_stop.request_stop(); }
  void flush_state(log::Producer& out) override;
  const ml::Monitor& monitor() const { return _monitor; }

 private:
  void pick_up_models();
  void warm_up();
  void finish_training(log::Producer& out);
  void hold();
  void score(log::Producer& out);  ///< scores _events and writes the results
  void write(const ml::MonitorOutput& o, log::Producer& out);
  void watch_drift(log::Producer& out);  ///< after scoring _events: PSI gauges, a retrain request when due

  Options _options;
  std::shared_ptr<ModelSlot> _slot;
  uint64_t _generation = 0;
  registry::TelemetryReader _reader;
  WarmupTrainer _trainer;
  ml::Monitor _monitor;
  std::vector<core::Telemetry> _events;
  ml::MonitorOutput _out;
  std::vector<core::Telemetry> _warmup;
  int64_t _warmup_first_ts = -1;
  bool _trained = false;
  std::future<TrainedModel> _training;  ///< the warm-up model, training off this thread
  std::atomic<bool> _busy{false};       ///< _training is valid, or its held events are not handled yet
  std::vector<core::Telemetry> _held;   ///< events read while it trains
  std::stop_source _training_stop;      ///< stop requested: the stage is stopping (interrupt, any thread)
  std::string _buf;
  core::Counter& _scored;
  core::Counter& _unscored;
  core::Counter& _unfamiliar;
  int64_t _unfamiliar_seen = 0;  // Monitor::unfamiliar_events already added to _unfamiliar
  core::Counter& _bad;           ///< what it could not read (also on the DLQ): the bench's check reads it
  DeadLetters _dead_letters;
  core::Counter& _alerts_raised;
  core::Counter& _alerts_cleared;
  core::Counter& _swaps;
  core::Metrics& _metrics;
  ml::DriftWatch _drift;
  ml::DriftAlarm _drift_alarm;
  const ml::Model* _drift_model = nullptr;  ///< the model whose references _drift holds
  /// Which cars the active model has in alert: each score says whether its car is (AnomalyScore::in_alert,
  /// the event's status), and their events stay out of the drift window (a failure is an alert, not drift: a
  /// fleet failing faster than it is retrained would look drifted otherwise).
  ml::AlertStates _alert_states;
  std::vector<uint8_t> _in_alert;        ///< per event of the batch: its car in alert after it
  int64_t _drift_clock = INT64_MIN;      ///< newest event time seen (DriftAlarm's clock)
  std::vector<core::Gauge*> _drift_psi;  ///< one per reference of _drift
  core::Gauge& _drift_psi_max;
  core::Counter& _retrain_requests;
};

/// The alerting settings of the score stage from the ml.* keys (hysteresis rule, firmware grace, ...); also
/// what `eval` and `bench score` replay with. ConfigError for an impossible rule.
ml::MonitorOptions monitor_options(const config::Config& config);

}  // namespace fleettwin::stages
