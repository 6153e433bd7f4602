// The trainer stage with real training (libtorch) on simulated fleets: scheduled retraining promotes a
// candidate trained on healthy data and refuses one trained on a window of failing cars, retrain requests,
// and the score stage scoring on while a candidate trains.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>

#include <simdjson.h>

#include "codec/avro.h"
#include "codec/retrain_request.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "ml/dataset.h"
#include "ml/training.h"
#include "ml/training_window.h"
#include "sim/fleet.h"
#include "stages/score/score_stage.h"
#include "stages/train/train_stage.h"
#include "support/log_reader.h"

namespace fleettwin::stages {
namespace {

using namespace std::chrono_literals;
namespace t = core::topics;

constexpr std::size_t kCars = 20;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kT0 = 1'700'000'000'000;
constexpr std::array kModes{sim::FailureMode::kTyrePressureLoss, sim::FailureMode::kCoolantOverheating,
                            sim::FailureMode::kBatteryCellDegradation,
                            sim::FailureMode::kDriveShaftDegradation,
                            sim::FailureMode::kShockAbsorberFailure};

ml::TrainOptions quick() {
  ml::TrainOptions o;
  o.max_epochs = 15;
  o.patience = 100;
  o.batch = 128;
  o.progress = false;
  return o;
}

/// `duration_ms` of a fleet of kCars from `start`; `failing` cars get a failure `failing_after` into it
/// (the five learned modes in turn, those with the clearest signatures first).
std::vector<core::Telemetry> fleet(int64_t start, int64_t duration_ms, uint64_t seed, std::size_t failing,
                                   int64_t failing_after) {
  sim::FleetConfig c;
  c.cars = kCars;
  c.start_ms = start;
  c.duration_ms = duration_ms;
  c.failure_rate = 0;
  c.seed = seed;
  c.firmware_release_ms = 0;
  for (std::size_t i = 0; i < failing; ++i)
    c.planned_failures.push_back({i, kModes[i % kModes.size()], failing_after});
  sim::Fleet f(c);
  std::vector<core::Telemetry> out;
  core::Telemetry e;
  while (f.next(e)) out.push_back(e);
  return out;
}

/// The events of `events` with from <= ts < to.
std::vector<core::Telemetry> between(const std::vector<core::Telemetry>& events, int64_t from, int64_t to) {
  std::vector<core::Telemetry> out;
  for (const auto& e : events)
    if (e.ts >= from && e.ts < to) out.push_back(e);
  return out;
}

/// One fleet driving from two hours before kT0 to 1 h 45 min after it; 3 of its cars fail 5 minutes into
/// the trial (a tyre, the coolant, the battery). Its second hour trains the active model (the first, cars
/// starting cold, is left out), its third is the trainer's window, the rest the trial's traffic.
std::vector<core::Telemetry> the_fleet() {
  return fleet(kT0 - 2 * kHour, 3 * kHour + 45 * 60'000, 9, 3, 3 * kHour + 5 * 60'000);
}

std::shared_ptr<const ml::Model> train_on(std::vector<core::Telemetry> events, const std::string& version) {
  auto o = quick();
  o.version = version;
  return ml::train_model(ml::make_training_data(events, "test"), ml::fleettwin_architecture(), o);
}

/// The app's candidate trainer (app/ml_setup.cc), with the test's short training.
CandidateTrainer candidate_trainer(int max_epochs = 15) {
  return [max_epochs](const ml::TrainingData& data, const TrainRequest& request, std::stop_token stop) {
    auto o = quick();
    o.max_epochs = max_epochs;
    o.patience = max_epochs;  // no early stop: a long training stays long
    o.version = "candidate-" + request.trigger;
    o.stop_requested = [stop] { return stop.stop_requested(); };
    auto model = ml::train_model(data, ml::fleettwin_architecture(), o);
    model->meta.parent = request.parent;
    model->meta.trigger = request.trigger;
    return TrainedModel{model, ml::encode_artifact(*model)};
  };
}

/// The default margins but for agreement: in a fleet of 20 cars one car the two models disagree on for the
/// whole trial is 5% of the events (the default margin), and two healthy models trained on adjacent hours
/// keep one or two lasting alerts the other has not: their alert states differ on about 15% of the events of
/// the cars not both had in alert. A fleet of 2,000 is what the default is for.
PromotionGate test_gate() {
  ml::PromotionMargins margins;
  margins.disagreement = 0.2;
  return [margins](const ml::PromotionInput& in) { return ml::promotion_gate(in, margins); };
}

std::vector<log::Record> telemetry_records(const std::vector<core::Telemetry>& events, std::size_t from,
                                           std::size_t to) {
  std::vector<log::Record> out;
  for (std::size_t i = from; i < std::min(to, events.size()); ++i) {
    log::Record r;
    r.topic = t::kTelemetry;
    r.key = events[i].car;
    codec::encode_avro_telemetry(events[i], 1, r.value);
    out.push_back(std::move(r));
  }
  return out;
}

/// Ticks `stage` until `done` or a minute passes (training runs on the stage's own thread).
template <class Done>
bool tick_until(TrainStage& stage, log::Producer& out, Done done) {
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (!done() && std::chrono::steady_clock::now() < until) {
    stage.tick(out);
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

/// What the stage wrote to fleet.models, by key (the newest of each).
class ModelsTopic {
 public:
  explicit ModelsTopic(log::MemoryLog& log) : _log(log) {}
  /// A group of its own each time, from the beginning.
  std::map<std::string, std::string> read() {
    auto c = _log.consumer("check.models." + std::to_string(++_reads));
    c->subscribe({t::kModels});
    std::map<std::string, std::string> out;
    for (int empty = 0; empty < 3;) {
      auto batch = c->poll(1000, 20ms);
      empty = batch.empty() ? empty + 1 : 0;
      for (auto& r : batch) out[r.key] = std::move(r.value);
    }
    c->close();
    return out;
  }

 private:
  log::MemoryLog& _log;
  int _reads = 0;
};

class TrainStageTest : public ::testing::Test {
 protected:
  TrainStageTest() {
    for (const char* topic : {t::kTelemetry, t::kModels, t::kModelsDlq})
      mlog.create_topic(topic, {.partitions = 2});
    producer = mlog.producer();
  }

  TrainStage::Options options() const {
    TrainStage::Options o;
    o.window_ms = kHour;
    o.retrain_every_ms = kHour;
    o.shadow_period_ms = 40 * 60'000;
    o.min_events = 100;
    return o;
  }

  /// Feeds `window` (the training window), then the trial traffic: its first events make the candidate
  /// due, the rest run it in shadow. Returns what the stage wrote, by key.
  std::map<std::string, std::string> run_schedule(TrainStage& stage,
                                                  const std::vector<core::Telemetry>& window,
                                                  const std::vector<core::Telemetry>& trial) {
    for (std::size_t i = 0; i < window.size(); i += 500)
      stage.process(telemetry_records(window, i, i + 500), *producer);
    EXPECT_FALSE(stage.working()) << "not due before an hour of event time";
    stage.process(telemetry_records(trial, 0, kCars), *producer);  // an hour after the first event
    EXPECT_TRUE(stage.working());
    EXPECT_TRUE(tick_until(stage, *producer, [&] {
      producer->flush(5s);
      return models.read().contains(kModelKeyShadow);
    })) << "no candidate published in shadow";
    for (std::size_t i = kCars; i < trial.size(); i += 500)
      stage.process(telemetry_records(trial, i, i + 500), *producer);
    EXPECT_TRUE(tick_until(stage, *producer, [&] { return !stage.working(); })) << "the trial never ended";
    producer->flush(5s);
    return models.read();
  }

  simdjson::dom::element gate_of(const std::map<std::string, std::string>& written,
                                 const std::string& version) {
    const auto it = written.find(gate_key(version));
    EXPECT_NE(it, written.end()) << "no gate record of " << version;
    if (it == written.end()) return {};
    gate_doc = it->second;
    return parser.parse(gate_doc).value();
  }

  log::MemoryLog mlog;
  std::unique_ptr<log::Producer> producer;
  core::Metrics metrics;
  ModelsTopic models{mlog};
  simdjson::dom::parser parser;
  std::string gate_doc;
};

// The trial's traffic: 3 of 20 cars fail 5 minutes in, and both healthy models alert on them; a candidate
// trained on the fleet's next hour of healthy driving is no worse than the active model by the default
// margins and is promoted.
TEST_F(TrainStageTest, ScheduledRetrainingPromotesACandidateTrainedOnHealthyData) {
  const auto events = the_fleet();
  auto slot = std::make_shared<ModelSlot>();
  slot->set_active(train_on(between(events, kT0 - kHour, kT0), "active-1"));
  TrainStage stage(options(), slot, candidate_trainer(), test_gate(), metrics);
  const auto written =
      run_schedule(stage, between(events, kT0, kT0 + kHour), between(events, kT0 + kHour, kT0 + 2 * kHour));

  ASSERT_TRUE(written.contains(kModelKeyActive))
      << "not promoted: "
      << (written.contains(gate_key("candidate-schedule")) ? written.at(gate_key("candidate-schedule")) : "");
  const auto active = ml::decode_artifact(written.at(kModelKeyActive));
  EXPECT_EQ(active->meta.version, "candidate-schedule");
  EXPECT_EQ(active->meta.parent, "active-1");  // lineage
  EXPECT_EQ(active->meta.trigger, "schedule");
  EXPECT_TRUE(written.contains(archive_key("candidate-schedule")));  // kept for a rollback
  EXPECT_EQ(written.at(kModelKeyShadow), "");  // no shadow any more: it is the active model now
  auto gate = gate_of(written, "candidate-schedule");
  EXPECT_TRUE(gate["passed"].get_bool().value()) << gate_doc;
  EXPECT_TRUE(gate["promoted"].get_bool().value()) << gate_doc;
  EXPECT_GT(gate["trial"]["active"]["alerts"].get_int64().value(), 0) << gate_doc;
  EXPECT_GT(gate["trial"]["candidate"]["events"].get_int64().value(), 1000) << gate_doc;
  EXPECT_EQ(metrics.value("fleettwin_trainer_promotions_total"), 1);
}

// A window of deliberately faulty cars (every car failing from its first message): the candidate learns
// failures as normal. The gate refuses it, the active model stays, and the gate record says why.
TEST_F(TrainStageTest, ScheduledRetrainingRefusesACandidateTrainedOnFaultyCars) {
  const auto events = the_fleet();
  auto slot = std::make_shared<ModelSlot>();
  slot->set_active(train_on(between(events, kT0 - kHour, kT0), "active-1"));
  TrainStage stage(options(), slot, candidate_trainer(), test_gate(), metrics);
  const auto written =
      run_schedule(stage, fleet(kT0, kHour, 5, kCars, 0), between(events, kT0 + kHour, kT0 + 2 * kHour));

  EXPECT_FALSE(written.contains(kModelKeyActive)) << "a worse candidate was promoted";
  EXPECT_TRUE(written.contains(kModelKeyShadow));  // it stays a candidate, scored in shadow
  auto gate = gate_of(written, "candidate-schedule");
  EXPECT_FALSE(gate["passed"].get_bool().value()) << gate_doc;
  EXPECT_FALSE(gate["promoted"].get_bool().value()) << gate_doc;
  EXPECT_GT(gate["reasons"].get_array().size(), 0u) << gate_doc;
  EXPECT_EQ(metrics.value("fleettwin_trainer_refusals_total"), 1);
  EXPECT_EQ(metrics.value("fleettwin_trainer_promotions_total"), 0);
}

// A window in which 3 of 20 cars begin failing 10 minutes in (a tyre, the coolant, the battery): the
// candidate's training data is the window less the cars ml::leave_out_cars_in_alert finds in alert by the
// active model, and with the option off every car. The active model's threshold is raised so that the
// 20-car model (4 held-out cars) alerts on the failures rather than on its own noise.
TEST_F(TrainStageTest, CandidateTrainsWithoutTheCarsTheActiveModelHasInAlert) {
  auto model = train_on(between(the_fleet(), kT0 - kHour, kT0), "active-1");
  std::const_pointer_cast<ml::Model>(model)->meta.threshold *= 3;
  const auto events = fleet(kT0 - 2 * kHour, 3 * kHour + 5 * 60'000, 9, 3, kHour + 10 * 60'000);
  const auto window = between(events, kT0 - kHour, kT0);
  auto expected = window;
  const auto f =
      ml::leave_out_cars_in_alert(expected, model, ml::MonitorOptions{}, ml::FeatureSpace::builtin());
  ASSERT_GT(f.cars_left_out, 0) << f.cars_in_alert << " cars in alert";
  EXPECT_TRUE(std::binary_search(f.left_out.begin(), f.left_out.end(), std::string("car-00000")))
      << "the tyre failing from minute 10 is not among the cars left out";
  for (const bool leave_out : {true, false}) {
    auto slot = std::make_shared<ModelSlot>();
    slot->set_active(model);
    auto seen = std::make_shared<std::atomic<int64_t>>(-1);  // cars in the data the trainer got
    CandidateTrainer capture = [seen](const ml::TrainingData& data, const TrainRequest&,
                                      std::stop_token) -> TrainedModel {
      seen->store(data.cars);
      throw std::runtime_error("only the data was wanted");
    };
    auto o = options();
    o.leave_out_alerted = leave_out;
    TrainStage stage(o, slot, capture, test_gate(), metrics);
    for (std::size_t i = 0; i < window.size(); i += 500)
      stage.process(telemetry_records(window, i, i + 500), *producer);
    stage.process(telemetry_records(between(events, kT0, kT0 + kHour), 0, kCars), *producer);  // due
    ASSERT_TRUE(tick_until(stage, *producer, [&] { return !stage.working(); })) << leave_out;
    EXPECT_EQ(seen->load(), static_cast<int64_t>(kCars) - (leave_out ? f.cars_left_out : 0)) << leave_out;
  }
}

// A retrain request trains at once (no schedule); with no active model the candidate becomes the first one.
// A request the trainer cannot read goes to fleet.models.dlq with the reason.
TEST_F(TrainStageTest, RetrainRequestTrainsNowAndABadOneGoesToTheDlq) {
  auto options = this->options();
  options.retrain_every_ms = 0;
  TrainStage stage(options, std::make_shared<ModelSlot>(), candidate_trainer(2), test_gate(), metrics);
  const auto events = fleet(kT0, 20 * 60'000, 5, 0, 0);
  stage.process(telemetry_records(events, 0, events.size()), *producer);
  EXPECT_FALSE(stage.working());

  log::Record bad;
  bad.topic = t::kModels;
  bad.key = kModelKeyRetrain;
  bad.value = R"({"reason":"because","ts":1})";
  log::Record good = bad;
  good.value = codec::retrain_request_to_json({"api", "test", kT0});
  stage.process({bad, good}, *producer);
  EXPECT_TRUE(stage.working());
  ASSERT_TRUE(tick_until(stage, *producer, [&] { return !stage.working(); }));
  producer->flush(5s);
  const auto written = models.read();
  ASSERT_TRUE(written.contains(kModelKeyActive));
  const auto first = ml::decode_artifact(written.at(kModelKeyActive));
  EXPECT_EQ(first->meta.trigger, "api");
  EXPECT_EQ(first->meta.parent, "");
  const auto dlq = testing::read_all(mlog, t::kModelsDlq);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].header(t::kHeaderErrorReason), "bad_retrain_request");
}

// The score stage keeps scoring while a candidate trains: both run as stages of the embedded log, and the
// scored counter grows while the trainer is still at work (a long training, stopped when the test ends).
TEST_F(TrainStageTest, ScoreStageKeepsScoringWhileACandidateTrains) {
  mlog.create_topic(t::kScores, {.partitions = 2});
  mlog.create_topic(t::kAlerts, {.partitions = 2});
  mlog.create_topic(t::kCommands, {.partitions = 2});
  mlog.create_topic(t::kTelemetryDlq, {.partitions = 2});
  auto score_slot = std::make_shared<ModelSlot>();
  score_slot->set_active(train_on(fleet(kT0 - 2 * kHour, kHour, 3, 0, 0), "active-1"));
  auto options = this->options();
  options.retrain_every_ms = 0;
  auto trainer = std::make_unique<TrainStage>(options, std::make_shared<ModelSlot>(),
                                              candidate_trainer(100'000), test_gate(), metrics);
  TrainStage* train = trainer.get();
  StageRunner train_runner(std::move(trainer), mlog, metrics);
  StageRunner score_runner(std::make_unique<ScoreStage>(ScoreStage::Options{}, score_slot, metrics), mlog,
                           metrics);
  train_runner.start();
  score_runner.start();

  const auto events = fleet(kT0, 2 * kHour, 5, 0, 0);
  const std::size_t half = events.size() / 2;
  auto send = [&](std::size_t from, std::size_t to) {
    for (auto& r : telemetry_records(events, from, to))
      producer->send(log::OutRecord{r.topic, r.key, std::move(r.value), {}, -1, 0});
    producer->flush(10s);
  };
  send(0, half);
  log::OutRecord request{
      t::kModels, kModelKeyRetrain, codec::retrain_request_to_json({"api", "", kT0}), {}, -1, 0};
  producer->send(std::move(request));
  producer->flush(5s);
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (!train->working() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(train->working()) << "the request started no training";

  const int64_t before = metrics.value(core::metric::kScoreScored);
  send(half, events.size());
  while (metrics.value(core::metric::kScoreScored) < before + static_cast<int64_t>(events.size() - half) &&
         std::chrono::steady_clock::now() < until + 60s)
    std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(train->working()) << "the training ended before the check: make it longer";
  EXPECT_GE(metrics.value(core::metric::kScoreScored), before + static_cast<int64_t>(events.size() - half));
  score_runner.request_stop();
  train_runner.request_stop();  // stops the training at its next minibatch
  score_runner.join();
  train_runner.join();
}

}  // namespace
}  // namespace fleettwin::stages
