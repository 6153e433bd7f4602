#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "codec/retrain_request.h"
#include "config/config.h"
#include "core/metrics.h"
#include "log/log.h"
#include "ml/dataset.h"
#include "ml/monitor.h"
#include "ml/promotion_gate.h"
#include "ml/shadow_trial.h"
#include "registry/telemetry_reader.h"
#include "stages/dead_letters.h"
#include "stages/score/score_stage.h"
#include "stages/stage.h"

namespace fleettwin::stages {

/// fleet.models keys of the model lifecycle besides kModelKeyActive / kModelKeyShadow: every model the
/// trainer publishes is also kept under "anomaly.v<version>" (what rollback re-publishes), and the promotion
/// gate's results of a candidate under "anomaly.gate.v<version>" (what its model card shows).
std::string archive_key(const std::string& version);
std::string gate_key(const std::string& version);
inline constexpr const char* kArchiveKeyPrefix = "anomaly.v";
inline constexpr const char* kGateKeyPrefix = "anomaly.gate.v";

/// What asked for a candidate, and the model that was active then (its lineage).
struct TrainRequest {
  std::string trigger;  ///< schedule | api | drift
  std::string detail;
  std::string parent;  ///< version of the active model, empty without one
};
/// Trains a candidate on the window's data and returns it with its artifact, lineage set in its metadata
/// (ml::ModelMeta::parent/trigger). Runs on the trainer's training thread (lower priority); throws
/// (ml::TrainingStopped) soon after `stop` is requested, std::invalid_argument with too little data.
using CandidateTrainer = std::function<TrainedModel(ml::TrainingData, const TrainRequest&, std::stop_token)>;

/// Decides on a trial's comparison (ml::promotion_gate with the configured margins). Pure; called on the
/// training thread.
using PromotionGate = std::function<ml::PromotionDecision(const ml::PromotionInput&)>;

/// The trainer: one for the fleet (embedded in `up`, or the `fleettwin trainer` role). It keeps a sliding
/// window of recent telemetry (the newest `window_ms` of event time, at most `max_events`: the oldest go
/// first), trains a candidate (without the cars the active model has in alert at the window's end when
/// `leave_out_alerted`) every `retrain_every_ms` of event time and on retrain requests (key
/// "retrain.request" on fleet.models), publishes it as the shadow model ("anomaly.shadow", which the score
/// stage scores without ever alerting) and keeps the telemetry of the next `shadow_period_ms` to replay it
/// through the active model and the candidate (ml::run_trial). The promotion gate then decides: promote
/// (`auto_promote`: the candidate is published as "anomaly") or leave it a candidate with the reasons
/// ("anomaly.gate.v<version>"). Training and the trial's replay run on one thread of their own at a lower
/// priority (kTrainingNice, libtorch on one thread), never on the runner's thread, which only reads records
/// and writes what the training thread finished. Runs on its runner's thread; interrupt() from any thread.
class TrainStage final : public Stage {
 public:
  struct Options {
    std::shared_ptr<const ml::FeatureSpace> space = ml::FeatureSpace::builtin();
    ml::MonitorOptions monitor;  ///< the score stage's rule: the trial replays what it would raise
    int64_t window_ms = int64_t{2} * 3'600'000;
    /// Leave the cars the active model has in alert at the window's end out of a candidate's training data
    /// (ml::leave_out_cars_in_alert; ml.train_leave_out_alerted, off by default).
    bool leave_out_alerted = false;
    std::size_t max_events = 400'000;
    int64_t retrain_every_ms = 0;  ///< 0: only on requests
    int64_t shadow_period_ms = int64_t{30} * 60'000;
    bool auto_promote = true;
    std::size_t min_events = 1'000;  ///< fewer in the window: a request waits for more
  };
  /// `models`: the active model as a ModelWatcher of fleet.models sees it (the candidate's parent and the
  /// trial's reference); `train` and `gate` come from the app (libtorch stays out of this library).
  TrainStage(Options options, std::shared_ptr<ModelSlot> models, CandidateTrainer train, PromotionGate gate,
             core::Metrics& metrics, registry::TelemetryReader reader = registry::TelemetryReader());
  ~TrainStage() override;
  TrainStage(const TrainStage&) = delete;
  TrainStage& operator=(const TrainStage&) = delete;
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void tick(log::Producer& out) override;
  void interrupt() override { _stop.request_stop(); }
  void skipped(int64_t count) override { _evicted.add(count); }

  /// Any thread (tests): whether a candidate is training or on trial.
  bool working() const { return _working.load(); }
  /// Runner's thread, or after it stopped: events in the training window.
  std::size_t window_events() const { return _window.size(); }

 private:
  void add_event(core::Telemetry t);
  void read_request(const log::Record& r, log::Producer& out);
  void maybe_start_training();
  void finish_training(log::Producer& out);
  void maybe_start_trial_end();
  void finish_trial(log::Producer& out);
  std::shared_ptr<const ml::Model> active_model();
  void send(log::Producer& out, const std::string& key, std::string value);

  Options _options;
  std::shared_ptr<ModelSlot> _models;
  uint64_t _models_generation = 0;
  std::shared_ptr<const ml::Model> _active;
  CandidateTrainer _train;
  PromotionGate _gate;
  registry::TelemetryReader _reader;
  DeadLetters _dead_letters;

  std::deque<core::Telemetry> _window;  ///< newest window_ms of event time, oldest first
  int64_t _newest_ts = -1;
  int64_t _next_due_ts = -1;                      ///< event time of the next scheduled candidate
  std::optional<codec::RetrainRequest> _pending;  ///< a request not yet served

  // The candidate's way: training (_training valid), then on trial (_candidate set, collecting _trial until
  // _trial_end_ts), then judged (_judging valid).
  std::future<TrainedModel> _training;
  TrainRequest _training_request;
  TrainedModel _candidate;
  std::vector<core::Telemetry> _trial;
  int64_t _trial_end_ts = -1;
  std::future<std::pair<ml::TrialResult, ml::PromotionDecision>> _judging;
  std::atomic<bool> _working{false};
  std::stop_source _stop;

  core::Counter& _read;
  core::Counter& _evicted;
  core::Counter& _trained;
  core::Counter& _failed;
  core::Counter& _promoted;
  core::Counter& _refused;
  core::Gauge& _window_gauge;
};

/// The trainer's options from the ml.* keys (its descriptor's). ConfigError for an impossible setting.
TrainStage::Options train_stage_options(const config::Config& config);
/// The promotion gate with the ml.promotion_margin_* keys.
PromotionGate promotion_gate(const config::Config& config);

}  // namespace fleettwin::stages
