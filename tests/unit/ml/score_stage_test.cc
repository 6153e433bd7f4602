#include <gtest/gtest.h>
#include <simdjson.h>

#include <regex>
#include <set>
#include <string_view>
#include <thread>

#include "codec/avro.h"
#include "codec/json.h"
#include "codec/schemas.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "core/twin.h"
#include "log/memory/memory_log.h"
#include "stages/score/score_stage.h"
#include "support/log_reader.h"

namespace fleettwin::stages {
namespace {

using namespace std::chrono_literals;
namespace t = core::topics;

// Reconstructs zeros: every feature's error is its value, so the score is the RMS of the three largest.
std::shared_ptr<const ml::Model> blind_model(const std::string& version, double threshold) {
  auto m = std::make_shared<ml::Model>();
  m->meta.architecture = ml::fleettwin_architecture();
  m->meta.architecture.smoothing = 1.0;  // per-event scores: the alert timing below is exact
  const auto n = m->meta.architecture.features.size();
  m->meta.center.assign(n, 0);
  m->meta.scale.assign(n, 1);
  m->meta.error_scale.assign(n, 1);
  m->meta.error_scale_low.assign(n, 1);
  m->meta.weight.assign(n, 1);
  m->meta.threshold = threshold;
  m->meta.version = version;
  ml::DenseLayer l;
  l.in = l.out = n;
  l.weight.assign(n * n, 0);
  l.bias.assign(n, 0);
  m->mlp = ml::Mlp({l});
  return m;
}

void send_telemetry(log::Producer& p, const std::string& car, int64_t seq, double coolant) {
  core::Telemetry tel;
  tel.car = car;
  tel.seq = seq;
  tel.ts = 1'000'000 + seq * 10'000;
  tel.values.assign(core::kSignalCount, 0.0);
  tel.values[core::kCoolantTemp] = coolant;
  log::OutRecord r;
  r.topic = t::kTelemetry;
  r.key = car;
  codec::encode_avro_telemetry(tel, 1, r.value);
  p.send(std::move(r));
}

using testing::read_all;

/// The score stage's topics on a memory log, a metrics registry and an empty model slot.
class ScoreStageTest : public ::testing::Test {
 protected:
  ScoreStageTest() {
    for (const char* topic : {t::kTelemetry, t::kScores, t::kAlerts, t::kCommands, t::kModels})
      mlog.create_topic(topic, {.partitions = 4});
  }

  /// Makes active a blind model `name` (its score: the coolant, alerting above `threshold`) trained on
  /// coolant spread evenly over 80..90 °C (a tenth in each bin); every other signal reads 0. Returns that
  /// reference.
  ml::DriftReference use_coolant_model(const std::string& name, double threshold) {
    auto model = std::const_pointer_cast<ml::Model>(blind_model(name, threshold));
    ml::DriftReference coolant{"coolant_temp", core::kCoolantTemp, {}, std::vector<float>(10, 0.1f)};
    for (int e = 81; e <= 89; ++e) coolant.edges.push_back(static_cast<float>(e));
    model->meta.drift = {coolant};
    slot->set_active(model);
    return coolant;
  }
  /// The drift watch of these tests: a window of 500 events, PSI 0.25, held for a minute.
  static ScoreStage::Options drift_options() {
    ScoreStage::Options o;
    o.drift_window = 500;
    o.drift_threshold = 0.25;
    o.drift_for_ms = 60'000;
    return o;
  }
  /// Scores everything on fleet.telemetry with options `o`, in batches of 100, until drained.
  void score_all(ScoreStage::Options o) {
    RunnerOptions ro;
    ro.max_batch = 100;
    StageRunner runner(std::make_unique<ScoreStage>(o, slot, metrics), mlog, metrics, ro);
    runner.start();
    runner.request_drain();
    runner.join();
    ASSERT_EQ(runner.error(), "");
  }

  log::MemoryLog mlog;
  core::Metrics metrics;
  std::shared_ptr<ModelSlot> slot = std::make_shared<ModelSlot>();
};

TEST_F(ScoreStageTest, HotModelSwapWhileScoringLosesNoEvent) {
  slot->set_active(blind_model("A", 1e9));
  slot->set_shadow(blind_model("S", 1e9));
  RunnerOptions ro;
  ro.max_batch = 97;  // many small batches: many chances to swap mid-stream
  StageRunner runner(std::make_unique<ScoreStage>(ScoreStage::Options{}, slot, metrics), mlog, metrics, ro);
  runner.start();
  auto p = mlog.producer();
  constexpr int kRounds = 20, kPerRound = 500;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i)
      send_telemetry(*p, "car-" + std::to_string(i % 50), round * 10 + i / 50 + 1, 0);
    p->flush(5s);
    slot->set_active(blind_model(round % 2 ? "A" : "B", 1e9));  // races with the runner's batches
    // Let this round be read before the next swap, so every version scores some events.
    while (metrics.value("fleettwin_records_in_total{stage=\"score\"}") < (round + 1) * kPerRound)
      std::this_thread::sleep_for(1ms);
  }
  runner.request_drain();
  runner.join();
  ASSERT_EQ(runner.error(), "");

  std::set<std::pair<std::string, int64_t>> seen;
  std::set<std::string> versions;
  int64_t active = 0, shadow = 0;
  for (const auto& r : read_all(mlog, t::kScores)) {
    codec::AnomalyScore s;
    ASSERT_TRUE(codec::decode_avro_anomaly_score(r.value, s, nullptr, nullptr));
    if (r.header(kHeaderModelRole) == "shadow") {
      EXPECT_EQ(s.model_version, "S");
      ++shadow;
      continue;
    }
    ++active;
    versions.insert(s.model_version);
    seen.insert({s.car, s.seq});
  }
  EXPECT_EQ(active, kRounds * kPerRound);  // count in == count out
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kRounds * kPerRound));
  EXPECT_EQ(shadow, kRounds * kPerRound);
  EXPECT_TRUE(versions.count("A") && versions.count("B"));
  EXPECT_GT(metrics.value("fleettwin_score_model_swaps_total"), 1);
  EXPECT_TRUE(read_all(mlog, t::kAlerts).empty());  // shadow scores never alert
}

TEST_F(ScoreStageTest, RaisedAlertSendsOneScheduleServiceCommand) {
  slot->set_active(blind_model("A", 2));
  slot->set_shadow(blind_model("S", 2));  // judges like the active one, yet its scores carry no alert
  ScoreStage::Options o;
  o.monitor.rule = {3, 5, 4};
  StageRunner runner(std::make_unique<ScoreStage>(o, slot, metrics), mlog, metrics);
  auto p = mlog.producer();
  for (int seq = 1; seq <= 20; ++seq) {
    send_telemetry(*p, "hot", seq, seq >= 5 && seq <= 12 ? 100 : 0);  // overheats, then recovers
    send_telemetry(*p, "fine", seq, 0);
  }
  p->flush(5s);
  runner.start();
  runner.request_drain();
  runner.join();
  ASSERT_EQ(runner.error(), "");

  const auto alerts = read_all(mlog, t::kAlerts);
  ASSERT_EQ(alerts.size(), 2u);
  core::Alert raised, cleared;
  ASSERT_TRUE(codec::decode_avro_alert(alerts[0].value, raised, nullptr, nullptr));
  ASSERT_TRUE(codec::decode_avro_alert(alerts[1].value, cleared, nullptr, nullptr));
  EXPECT_TRUE(raised.raised);
  EXPECT_EQ(raised.id, "hot:anomaly:" + std::to_string(1'000'000 + 7 * 10'000));
  EXPECT_EQ(raised.signals.front(), "coolant_temp");
  EXPECT_FALSE(cleared.raised);
  EXPECT_EQ(cleared.id, raised.id);

  const auto commands = read_all(mlog, t::kCommands);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].key, "hot");
  core::Command c;
  ASSERT_TRUE(codec::command_from_json(commands[0].value, c, nullptr));
  EXPECT_EQ(c.name, "schedule_service");
  EXPECT_EQ(c.id, "service:" + raised.id);
  EXPECT_NE(c.params_json.find(raised.id), std::string::npos);
  // Each event's score says whether its car is in alert after it: from the raising event (included) to the
  // clearing one (excluded); the event's status follows (core::score_status). Shadow scores never are.
  int64_t active = 0, in_alert = 0;
  for (const auto& r : read_all(mlog, t::kScores)) {
    codec::AnomalyScore s;
    ASSERT_TRUE(codec::decode_avro_anomaly_score(r.value, s, nullptr, nullptr));
    if (r.header(kHeaderModelRole) == "shadow") {
      EXPECT_FALSE(s.in_alert) << s.car << " " << s.seq;
      continue;
    }
    ++active;
    const bool open = s.car == "hot" && s.ts >= raised.ts && s.ts < cleared.ts;
    EXPECT_EQ(s.in_alert, open) << s.car << " " << s.seq;
    in_alert += s.in_alert ? 1 : 0;
    if (s.in_alert) {
      EXPECT_EQ(core::score_status(s.score, s.threshold, s.in_alert), core::HealthStatus::kAnomaly);
    }
  }
  EXPECT_EQ(active, 40);
  EXPECT_GT(in_alert, 3);
  EXPECT_LT(cleared.ts, 1'000'000 + 20 * 10'000);  // the clear came, so some later events are out of alert
}

// A shadow model that finds every event of an overheating car anomalous (what would raise an alert from the
// active model) raises no alert and sends no command: its scores go out marked, and that is all.
TEST_F(ScoreStageTest, ShadowModelNeverRaisesAlertsOrSendsCommands) {
  slot->set_active(blind_model("A", 1e9));
  slot->set_shadow(blind_model("S", 2));
  ScoreStage::Options o;
  o.monitor.rule = {3, 5, 4};
  StageRunner runner(std::make_unique<ScoreStage>(o, slot, metrics), mlog, metrics);
  auto p = mlog.producer();
  for (int seq = 1; seq <= 20; ++seq) send_telemetry(*p, "hot", seq, 100);
  p->flush(5s);
  runner.start();
  runner.request_drain();
  runner.join();
  ASSERT_EQ(runner.error(), "");
  int64_t shadow_above = 0;
  for (const auto& r : read_all(mlog, t::kScores)) {
    codec::AnomalyScore s;
    ASSERT_TRUE(codec::decode_avro_anomaly_score(r.value, s, nullptr, nullptr));
    if (r.header(kHeaderModelRole) == "shadow" && s.score > s.threshold) ++shadow_above;
  }
  EXPECT_EQ(shadow_above, 20);                        // the shadow model judged every event anomalous...
  EXPECT_TRUE(read_all(mlog, t::kAlerts).empty());    // ...and raised nothing
  EXPECT_TRUE(read_all(mlog, t::kCommands).empty());  // nor asked any car for a service
  EXPECT_EQ(metrics.value(core::metric::kAlerts, core::metric::kAlertRaised), 0);
}

TEST_F(ScoreStageTest, ShiftedTrafficDriftsAndAsksForOneRetraining) {
  use_coolant_model("A", 1e9);
  auto o = drift_options();
  o.drift_cooldown_ms = 3'600'000;
  auto p = mlog.producer();
  // 10 cars, 10 s apart each: 100 seq are 1,000 s of event time. Like training for 1,000 s, then hotter
  // (a heat wave) for 2,000 s: longer than drift_for, shorter than the cooldown, so one request.
  for (int seq = 1; seq <= 300; ++seq)
    for (int car = 0; car < 10; ++car)
      send_telemetry(*p, "car-" + std::to_string(car), seq, seq <= 100 ? 80.5 + (seq + car) % 10 : 105);
  p->flush(5s);
  ASSERT_NO_FATAL_FAILURE(score_all(o));

  const std::string coolant_psi = "fleettwin_drift_psi{signal=\"coolant_temp\"}";
  EXPECT_GT(metrics.value(coolant_psi), 2'500) << "PSI x 10^4 above the 0.25 threshold";
  EXPECT_EQ(metrics.value("fleettwin_drift_psi_max"), metrics.value(coolant_psi));
  EXPECT_TRUE(std::regex_search(metrics.prometheus_text(),
                                std::regex("\nfleettwin_drift_psi_max [0-9]+\\.[0-9]{4}\n")))
      << "exported as a decimal";
  int requests = 0;
  for (const auto& r : read_all(mlog, t::kModels)) {
    if (r.key != kModelKeyRetrain) continue;
    ++requests;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.value).get(doc), simdjson::SUCCESS) << r.value;
    EXPECT_EQ(std::string_view(doc["reason"]), "drift");
    EXPECT_EQ(std::string_view(doc["detail"]["signal"]), "coolant_temp");
    EXPECT_GT(double(doc["detail"]["psi"]), 0.25);
    // Asked once the shift had lasted drift_for: from seq 101 (ts 2,010,000) plus 60 s at least.
    EXPECT_GE(int64_t(doc["ts"]), 1'000'000 + 101 * 10'000 + 60'000);
  }
  EXPECT_EQ(requests, 1);
  EXPECT_EQ(metrics.value("fleettwin_drift_retrain_requests_total"), 1);
}

// Three of ten cars overheat for good (a failure rate far above the fleet's, as in the dashboard's run):
// their alerts say so, and their readings stay out of the drift window, so the seven healthy cars, still
// as in training, show no drift and ask for no retraining. Fed to the window, the overheating cars alone
// would take coolant's PSI above the threshold.
TEST_F(ScoreStageTest, FailingCarsInAlertAreNotDrift) {
  const auto coolant = use_coolant_model("A", 100);  // alerting above 100 °C
  auto p = mlog.producer();
  for (int seq = 1; seq <= 300; ++seq)
    for (int car = 0; car < 10; ++car)
      send_telemetry(*p, "car-" + std::to_string(car), seq,
                     seq > 100 && car < 3 ? 120 : 80.5 + (seq + car) % 10);
  p->flush(5s);
  ASSERT_NO_FATAL_FAILURE(score_all(drift_options()));

  EXPECT_EQ(metrics.value(core::metric::kAlerts, core::metric::kAlertRaised), 3);  // the failures alerted
  EXPECT_LT(metrics.value("fleettwin_drift_psi{signal=\"coolant_temp\"}"), 1'000) << "PSI x 10^4";
  EXPECT_EQ(metrics.value("fleettwin_drift_retrain_requests_total"), 0);
  // The same share of the window at 120 °C, counted, would be drift: 30% of values two bins' shares off.
  std::vector<int64_t> counts(10, 35);
  counts[9] += 150;
  EXPECT_GT(ml::psi(coolant.expected, counts.data(), 500), 0.25);
}

TEST_F(ScoreStageTest, ModelsWithoutDriftReferencesExportNoDrift) {
  slot->set_active(blind_model("old", 1e9));
  StageRunner runner(std::make_unique<ScoreStage>(ScoreStage::Options{}, slot, metrics), mlog, metrics);
  auto p = mlog.producer();
  for (int seq = 1; seq <= 50; ++seq) send_telemetry(*p, "a", seq, 200);
  p->flush(5s);
  runner.start();
  runner.request_drain();
  runner.join();
  EXPECT_EQ(metrics.value("fleettwin_drift_psi_max"), 0);
  EXPECT_EQ(metrics.prometheus_text().find("fleettwin_drift_psi{"), std::string::npos);
  EXPECT_EQ(metrics.value("fleettwin_drift_retrain_requests_total"), 0);
}

TEST_F(ScoreStageTest, WithoutAModelEventsAreCountedUnscored) {
  StageRunner runner(std::make_unique<ScoreStage>(ScoreStage::Options{}, nullptr, metrics), mlog, metrics);
  auto p = mlog.producer();
  for (int seq = 1; seq <= 10; ++seq) send_telemetry(*p, "a", seq, 0);
  p->flush(5s);
  runner.start();
  runner.request_drain();
  runner.join();
  EXPECT_EQ(metrics.value("fleettwin_score_unscored_total"), 10);
  EXPECT_TRUE(read_all(mlog, t::kScores).empty());
}

}  // namespace
}  // namespace fleettwin::stages
