// `fleettwin train` and `fleettwin eval`: predictive maintenance from the command line.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "app/log_factory.h"
#include "app/ml_setup.h"
#include "app/mqtt_front.h"
#include "app/store_factory.h"
#include "catalog/catalog.h"
#include "cli/commands.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "ml/dataset.h"
#include "ml/evaluation.h"
#include "ml/lifecycle_eval.h"
#include "registry/client.h"
#include "registry/telemetry_reader.h"
#include "sim/fleet.h"
#include "stages/train/train_stage.h"
#include "store/sqlite/sqlite_store.h"

namespace fleettwin::cli {

using config::ConfigError;
using config::parse_duration_ms;

namespace fs = std::filesystem;

namespace {

/// Where history comes from: `--kafka` (a topic of the log) or `--data-dir` (the SQLite store; the
/// embedded log lives in memory only, so after `up` the store is the history).
struct SourceFlags {
  std::string kafka, data_dir, topic = core::topics::kTelemetry, schema_registry;
  int64_t from = 0, to = 0, last = 0;
};

void add_source_flags(CLI::App* cmd, SourceFlags& f) {
  auto* kafka = cmd->add_option("--kafka", f.kafka, "Kafka bootstrap servers: read history from --topic");
  auto* dir =
      cmd->add_option("--data-dir", f.data_dir, "Data dir of `fleettwin up`: read history from its store");
  kafka->excludes(dir);
  cmd->add_option("--topic", f.topic, "Topic to read with --kafka (default fleet.telemetry)");
  cmd->add_option("--schema-registry", f.schema_registry, "Registry to check writer schemas with (--kafka)");
  auto* from = cmd->add_option("--from", f.from, "Only events with ts >= this (ms since the epoch)");
  auto* to = cmd->add_option("--to", f.to, "Only events with ts < this (ms since the epoch)");
  auto* last = cmd->add_option("--last", f.last, "Only the newest N events")->check(CLI::PositiveNumber);
  last->excludes(from)->excludes(to);
}

std::vector<core::Telemetry> read_kafka(const SourceFlags& f, const Config& config) {
  log::KafkaLog kafka(app::kafka_settings(config, f.kafka));
  // A throwaway group that never commits: reads the topic from its beginning every time.
  auto consumer = kafka.consumer("fleettwin.train." + std::to_string(::getpid()) + "." +
                                 std::to_string(std::chrono::system_clock::now().time_since_epoch().count()));
  consumer->subscribe({f.topic});
  // Records of every catalog version on the topic, read into the catalog this command runs with.
  registry::TelemetryReader reader(f.schema_registry.empty()
                                       ? nullptr
                                       : std::make_shared<registry::SchemaRegistryClient>(f.schema_registry),
                                   app::configured_catalog(config));
  std::vector<core::Telemetry> out;
  int64_t bad = 0;
  bool assigned = false;
  core::Telemetry t;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    auto batch = consumer->poll(10000, std::chrono::milliseconds(500));
    assigned = assigned || !consumer->assignment().empty();
    for (const auto& r : batch) {
      if (reader.read(r.value, t, &error))
        out.push_back(t);
      else
        ++bad;
    }
    if (assigned && batch.empty() && consumer->lag() == 0) break;
    if (!assigned && std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("kafka: no partitions of " + f.topic + " assigned within 60 s");
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r\033[Kread %zu events", out.size());
  }
  consumer->close();
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
  if (bad > 0) spdlog::warn("{} records of {} were not readable telemetry and were skipped", bad, f.topic);
  return out;
}

std::vector<core::Telemetry> read_store(const SourceFlags& f) {
  const fs::path db = fs::path(f.data_dir) / "fleettwin.db";
  if (!fs::exists(db))
    throw ConfigError("no fleettwin store in " + f.data_dir + " (expected " + db.string() + ")");
  store::SqliteStore store(db.string());
  std::vector<core::Telemetry> out;
  const int64_t to = f.to > 0 ? f.to : INT64_MAX;
  const auto cars = store.max_seq_per_car();
  std::size_t done = 0;
  for (const auto& [car, seq] : cars) {
    for (int64_t from = f.from;;) {
      auto rows = store.history(car, from, to, 100000);
      for (auto& r : rows) out.push_back(std::move(r.t));
      if (rows.size() < 100000) break;
      from = out.back().ts + 1;
    }
    ++done;
    if (isatty(STDERR_FILENO) && (done % 100 == 0 || done == cars.size()))
      std::fprintf(stderr, "\r\033[Kread %zu/%zu cars, %zu events", done, cars.size(), out.size());
  }
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
  return out;
}

/// The history the flags select, oldest first.
std::vector<core::Telemetry> read_history(const SourceFlags& f, const Config& config) {
  if (f.kafka.empty() == f.data_dir.empty())
    throw ConfigError("give exactly one of --kafka BROKERS or --data-dir DIR");
  auto events = f.kafka.empty() ? read_store(f) : read_kafka(f, config);
  std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.ts < b.ts; });
  if (!f.kafka.empty() && (f.from > 0 || f.to > 0))
    std::erase_if(events, [&](const auto& e) { return e.ts < f.from || (f.to > 0 && e.ts >= f.to); });
  if (f.last > 0 && static_cast<std::size_t>(f.last) < events.size())
    events.erase(events.begin(), events.end() - f.last);
  if (events.empty()) throw ConfigError("no telemetry in the selected history");
  spdlog::info("history: {} events from {} to {}", events.size(), events.front().ts, events.back().ts);
  return events;
}

void publish_model(const std::string& brokers, const Config& config, const std::string& key,
                   std::string artifact) {
  log::KafkaLog kafka(app::kafka_settings(config, brokers));
  log::TopicConfig compacted;
  compacted.compacted = true;
  compacted.partitions = static_cast<int32_t>(config.get(keys::log_partitions));
  kafka.create_topic(core::topics::kModels, compacted);
  auto producer = kafka.producer();
  log::OutRecord r;
  r.topic = core::topics::kModels;
  r.key = key;
  r.value = std::move(artifact);
  std::string failure;
  producer->send(std::move(r), [&](const log::OutRecord&, int64_t, const std::string* error) {
    if (error) failure = *error;
  });
  if (producer->flush(std::chrono::seconds(30)) != 0 || !failure.empty())
    throw std::runtime_error("publishing to fleet.models failed: " + failure);
}

/// The model's features on the catalog in use (catalog.file; the built-in one when empty).
std::shared_ptr<const ml::FeatureSpace> feature_space(const Config& config) {
  if (config.get(keys::catalog_file).empty()) return ml::FeatureSpace::builtin();
  return std::make_shared<const ml::FeatureSpace>(app::configured_catalog(config));
}

struct TrainFlags {
  SourceFlags source;
  std::string out, architecture;
  bool shadow = false, no_publish = false;
};

int run_train(TrainFlags& f, Config& config) {
  if (!f.architecture.empty()) config.set(keys::ml_architecture, f.architecture, "--architecture");
  const auto space = feature_space(config);
  const auto arch = ml::architecture_by_name(config.get(keys::ml_architecture), space);
  auto events = read_history(f.source, config);
  auto data = ml::make_training_data(
      events, f.source.kafka.empty() ? "store:" + f.source.data_dir : f.source.topic, space);
  auto model = ml::train_model(data, arch, app::train_options(config));
  const auto& m = model->meta;
  std::printf(
      "model %s: %zu features, %lld events from %lld cars, %lld epochs in %.1f s, loss %.5f (validation "
      "%.5f)\n",
      m.version.c_str(), m.architecture.features.size(), static_cast<long long>(m.events),
      static_cast<long long>(m.cars), static_cast<long long>(m.epochs), m.train_seconds, m.train_loss,
      m.val_loss);
  std::printf("threshold %.5g (%s; %lld held-out cars treated as failing)\n", m.threshold,
              m.threshold_method.c_str(), static_cast<long long>(m.excluded_cars));
  std::string artifact = ml::encode_artifact(*model);
  {
    std::ofstream out(f.out, std::ios::binary | std::ios::trunc);
    out.write(artifact.data(), static_cast<std::streamsize>(artifact.size()));
    if (!out) throw std::runtime_error("cannot write " + f.out);
  }
  std::printf("wrote %s (%zu bytes)\n", f.out.c_str(), artifact.size());
  const std::string key = f.shadow ? stages::kModelKeyShadow : stages::kModelKeyActive;
  if (!f.source.kafka.empty() && !f.no_publish) {
    publish_model(f.source.kafka, config, key, std::move(artifact));
    std::printf("published to %s as \"%s\"\n", core::topics::kModels, key.c_str());
  } else if (f.source.kafka.empty()) {
    std::printf("not published: the embedded log lives inside `fleettwin up`; it trains its own model\n");
  }
  return 0;
}

struct RollbackFlags {
  std::string kafka, version;
};

/// `fleettwin model rollback VERSION`: the artifact the trainer kept as "anomaly.v<VERSION>" on fleet.models
/// is published as "anomaly" again; the score stages swap to it between batches.
int run_rollback(const RollbackFlags& f, const Config& config) {
  log::KafkaLog kafka(app::kafka_settings(config, f.kafka));
  // A throwaway group that never commits: the compacted topic from its beginning.
  auto consumer = kafka.consumer("fleettwin.rollback." + std::to_string(::getpid()) + "." +
                                 std::to_string(std::chrono::system_clock::now().time_since_epoch().count()));
  consumer->subscribe({core::topics::kModels});
  const std::string key = stages::archive_key(f.version);
  std::string artifact;
  bool assigned = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    auto batch = consumer->poll(1000, std::chrono::milliseconds(500));
    assigned = assigned || !consumer->assignment().empty();
    for (auto& r : batch)
      if (r.key == key) artifact = std::move(r.value);  // the newest wins, as compaction keeps it
    if (assigned && batch.empty() && consumer->lag() == 0) break;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("kafka: could not read fleet.models within 60 s");
  }
  consumer->close();
  if (artifact.empty())
    throw ConfigError("no kept model '" + f.version + "' on fleet.models (key " + key +
                      "); GET /api/v1/models lists the versions");
  publish_model(f.kafka, config, stages::kModelKeyActive, std::move(artifact));
  std::printf("published %s as \"%s\": the score stages use it from their next batch\n", f.version.c_str(),
              stages::kModelKeyActive);
  return 0;
}

struct EvalFlags {
  SourceFlags source;
  std::string ground_truth, json;
  std::string train_window;  // empty: 30m, or 2h with --lifecycle
  bool lifecycle = false, reference_lifecycle = false;
  std::string retrain_every = "1h";
  // --lifecycle without a history: the fleet to simulate
  int64_t cars = 2000, hours = 8, seed = -1;
};

std::vector<sim::GroundTruth> read_truth(const std::string& path) {
  if (path.empty()) throw ConfigError("--ground-truth is required with --kafka or --data-dir");
  std::ifstream gt(path);
  if (!gt) throw ConfigError("--ground-truth: cannot read " + path);
  std::vector<sim::GroundTruth> truth;
  std::string error;
  if (!sim::read_ground_truth(gt, truth, &error)) throw ConfigError("--ground-truth " + path + ": " + error);
  return truth;
}

/// Scored car-hours: each car's span of events from `from` on, plus one interval.
double scored_car_hours(const std::vector<core::Telemetry>& events, int64_t from, int64_t interval) {
  std::map<std::string, std::pair<int64_t, int64_t>> span;
  for (const auto& e : events) {
    if (e.ts < from) continue;
    auto [it, fresh] = span.emplace(e.car, std::pair{e.ts, e.ts});
    it->second.second = e.ts;
  }
  double car_hours = 0;
  for (const auto& [car, s] : span) car_hours += static_cast<double>(s.second - s.first + interval) / 3.6e6;
  return car_hours;
}

/// Scores `events` (oldest first) from `scoring_from` on with `model` exactly as the score stage would, in
/// batches; the events before only warm up per-car state. Returns the alerts raised and cleared.
std::vector<core::Alert> replay(const std::vector<core::Telemetry>& events,
                                const std::shared_ptr<const ml::Model>& model,
                                const ml::MonitorOptions& options, int64_t scoring_from,
                                int64_t* unfamiliar) {
  ml::Monitor monitor(options, model->meta.architecture.space);
  std::vector<core::Alert> alerts;
  std::vector<core::Telemetry> batch;
  ml::MonitorOutput out;
  bool scoring = false;
  auto flush = [&] {
    out.clear();
    monitor.process(batch, out);
    for (auto& a : out.alerts)
      if (a.ts >= scoring_from) alerts.push_back(std::move(a));
    batch.clear();
  };
  for (const auto& e : events) {
    if (!scoring && e.ts >= scoring_from) {
      flush();
      monitor.set_model(model);
      scoring = true;
    }
    batch.push_back(e);
    if (batch.size() == 5000) flush();
  }
  flush();
  *unfamiliar = monitor.unfamiliar_events();
  return alerts;
}

void print_row(const char* name, const ml::EvalReport& r) {
  std::printf("%-20s %9.3f %7.3f %6.3f %9.0f %9.0f %12.2f %7lld %6lld/%-6lld\n", name, r.precision, r.recall,
              r.f1, r.median_delay_s, r.p90_delay_s, r.false_alerts_per_1000_car_hours,
              static_cast<long long>(r.alerts), static_cast<long long>(r.detected),
              static_cast<long long>(r.failures));
}

int run_eval(EvalFlags& f, Config& config) {
  const auto truth = read_truth(f.ground_truth);
  const int64_t train_ms = parse_duration_ms(f.train_window);
  if (train_ms <= 0) throw ConfigError("--train-window must be positive");
  auto events = read_history(f.source, config);
  const int64_t train_end = events.front().ts + train_ms;
  if (events.back().ts <= train_end)
    throw ConfigError("the history is shorter than --train-window " + f.train_window);
  std::vector<core::Telemetry> train_events;
  for (const auto& e : events)
    if (e.ts < train_end) train_events.push_back(e);
  const auto space = feature_space(config);
  auto data = ml::make_training_data(train_events, "eval", space);
  const auto topts = app::train_options(config);
  const auto mopts = stages::monitor_options(config);
  auto ours = ml::train_model(data, ml::fleettwin_architecture(space), topts);
  auto reference = ml::train_model(data, ml::reference_architecture(space), topts);

  const double car_hours = scored_car_hours(events, train_end, config.get(keys::sim_interval).count());

  ml::EvalOptions eo;
  eo.window_ms = config.get(keys::ml_eval_window).count();
  eo.from_ts = train_end;
  eo.to_ts = events.back().ts -
             int64_t{5} * 60'000;  // failures in the last 5 minutes have too little data after them
  eo.shown_from = ml::shown_failures(truth, events, eo.window_ms, space->catalog());
  int64_t our_unfamiliar = 0, ref_unfamiliar = 0;
  const auto our_alerts = replay(events, ours, mopts, train_end, &our_unfamiliar);
  const auto ref_alerts = replay(events, reference, mopts, train_end, &ref_unfamiliar);
  auto mine = ml::evaluate(our_alerts, ml::kAlertAnomaly, truth, ml::learned_modes(), car_hours, eo);
  auto ref = ml::evaluate(ref_alerts, ml::kAlertAnomaly, truth, ml::learned_modes(), car_hours, eo);
  mine.unfamiliar_events = our_unfamiliar;
  ref.unfamiliar_events = ref_unfamiliar;
  const auto fw = ml::evaluate(our_alerts, ml::kAlertOutdatedFirmware, truth,
                               {sim::FailureMode::kOutdatedFirmware}, car_hours, eo);

  std::printf("\nscored %.0f car-hours after a %s training window; learned failure modes:\n", car_hours,
              f.train_window.c_str());
  std::printf("%-20s %9s %7s %6s %9s %9s %12s %7s %13s\n", "model", "precision", "recall", "f1", "median_s",
              "p90_s", "false/1000h", "alerts", "detected");
  print_row("fleettwin", mine);
  print_row("reference", ref);
  std::printf("\nper mode (fleettwin | reference): recall, median delay s; failures the cars could show\n");
  for (std::size_t i = 0; i < mine.per_mode.size(); ++i)
    std::printf("  %-26s %3lld/%-3lld %5.0f | %3lld/%-3lld %5.0f   %lld of %lld\n",
                mine.per_mode[i].mode.c_str(), static_cast<long long>(mine.per_mode[i].detected),
                static_cast<long long>(mine.per_mode[i].failures), mine.per_mode[i].median_delay_s,
                static_cast<long long>(ref.per_mode[i].detected),
                static_cast<long long>(ref.per_mode[i].failures), ref.per_mode[i].median_delay_s,
                static_cast<long long>(mine.per_mode[i].failures_shown),
                static_cast<long long>(mine.per_mode[i].failures));
  // Recall and F1 above count every failure; a failure no message of its car could show within the window
  // (a worn shaft in a car that stood still, overheating in an engine that stayed off) is a miss no detector
  // could avoid. Said apart so that a reader sees which misses are the model's.
  std::printf(
      "\n%lld of %lld failures could show in their car's messages within the %lld-minute window "
      "(a worn shaft needs the car to move, overheating a running engine); over those, with delays from the "
      "first such message:\n",
      static_cast<long long>(mine.failures_shown), static_cast<long long>(mine.failures),
      static_cast<long long>(eo.window_ms / 60'000));
  for (const auto* r : {&mine, &ref})
    std::printf("  %-18s recall %.3f  F1 %.3f  median %.0f s  p90 %.0f s\n",
                r == &mine ? "fleettwin" : "reference", r->recall_shown, r->f1_shown, r->median_delay_shown_s,
                r->p90_delay_shown_s);
  if (our_unfamiliar > 0)
    std::printf(
        "\nfleettwin: %lld anomalous events in conditions the training window never showed were not "
        "counted towards alerts (ml.skip_unfamiliar); retrain on a longer history to judge them\n",
        static_cast<long long>(our_unfamiliar));
  std::printf("\noutdated firmware (a rule, not learned):\n");
  print_row("firmware rule", fw);
  if (!f.json.empty()) {
    std::ofstream out(f.json);
    out << "{\"fleettwin\":" << mine.to_json() << ",\"reference\":" << ref.to_json()
        << ",\"outdated_firmware_rule\":" << fw.to_json() << ",\"train_window_ms\":" << train_ms
        << ",\"events\":" << events.size() << "}\n";
    if (!out) throw std::runtime_error("cannot write " + f.json);
  }
  return 0;
}

/// One model's detection quality under the lifecycle protocol, and the run behind it.
struct LifecycleResult {
  ml::LifecycleRun run;
  ml::EvalReport report;
};

/// What the gate estimated against what the ground truth says: of each model's anomaly alerts over a shadow
/// period, how many were false (no failure of the car began within the window before it, none going on).
struct StepTruth {
  int64_t active_alerts = 0, active_false = 0, candidate_alerts = 0, candidate_false = 0;
  std::string active_false_signals, candidate_false_signals;  ///< "signal count, ..." by the first signal
};

/// The false ones of `alerts` (raised, anomaly) counted by their first signal, most first: which inputs the
/// false alerts come from.
std::string false_signals(const std::vector<core::Alert>& alerts, const std::vector<sim::GroundTruth>& truth,
                          const ml::EvalOptions& eo) {
  std::map<std::string, int64_t> by_signal;
  for (const auto& a : alerts) {
    if (!a.raised || a.kind != ml::kAlertAnomaly) continue;
    if (ml::evaluate({a}, ml::kAlertAnomaly, truth, ml::learned_modes(), 0, eo).false_alerts > 0)
      ++by_signal[a.signals.empty() ? "-" : a.signals.front()];
  }
  std::vector<std::pair<int64_t, std::string>> sorted;
  sorted.reserve(by_signal.size());
  for (const auto& [signal, n] : by_signal) sorted.emplace_back(-n, signal);
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  for (const auto& [n, signal] : sorted) out += (out.empty() ? "" : ", ") + signal + " " + std::to_string(-n);
  return out;
}

StepTruth step_truth(const ml::LifecycleStep& s, const ml::LifecycleRun& run,
                     const std::vector<sim::GroundTruth>& truth, const ml::EvalOptions& eo) {
  std::vector<core::Alert> active;
  for (const auto& a : run.alerts)
    if (a.ts >= s.shadow_from && a.ts < s.shadow_to) active.push_back(a);
  StepTruth t;
  const auto a = ml::evaluate(active, ml::kAlertAnomaly, truth, ml::learned_modes(), 0, eo);
  const auto c = ml::evaluate(s.candidate_alerts, ml::kAlertAnomaly, truth, ml::learned_modes(), 0, eo);
  t.active_alerts = a.alerts;
  t.active_false = a.false_alerts;
  t.candidate_alerts = c.alerts;
  t.candidate_false = c.false_alerts;
  t.active_false_signals = false_signals(active, truth, eo);
  t.candidate_false_signals = false_signals(s.candidate_alerts, truth, eo);
  return t;
}

/// How many of `cars` (sorted) have a failure of a learned mode that began before `before`.
int64_t failing_cars(const std::vector<std::string>& cars, const std::vector<sim::GroundTruth>& truth,
                     int64_t before) {
  const auto modes = ml::learned_modes();
  std::set<std::string> failing;
  for (const auto& g : truth)
    if (g.onset_ts < before && std::find(modes.begin(), modes.end(), g.mode) != modes.end() &&
        std::binary_search(cars.begin(), cars.end(), g.car))
      failing.insert(g.car);
  return static_cast<int64_t>(failing.size());
}

void print_steps(const char* name, const ml::LifecycleRun& run, int64_t t0,
                 const std::vector<sim::GroundTruth>& truth, const ml::EvalOptions& eo) {
  std::printf("\n%s: %zu retrainings, %lld promoted\n", name, run.steps.size(),
              static_cast<long long>(run.promotions()));
  // Over the whole run, by the models that served: which inputs the reported false alerts come from.
  const auto all_false = false_signals(run.alerts, truth, eo);
  std::printf("  false alerts by first signal, whole run: %s\n",
              all_false.empty() ? "none" : all_false.c_str());
  for (const auto& s : run.steps) {
    std::printf(
        "  %-14s %8lld events  shadow %3lld-%3lld min  %-9s est. false/1000h %.2f vs %.2f, agree %.4f\n",
        s.candidate.c_str(), static_cast<long long>(s.training_events),
        static_cast<long long>((s.shadow_from - t0) / 60'000),
        static_cast<long long>((s.shadow_to - t0) / 60'000), s.decision.promote ? "promoted" : "kept",
        s.candidate_summary.estimated_false_per_1000_car_hours(),
        s.active.estimated_false_per_1000_car_hours(), s.agreement);
    if (s.filter.cars_in_alert > 0)
      std::printf(
          "      %s %lld of %lld cars in alert at the window's end (%lld events), %lld failing by the "
          "ground truth\n",
          s.filter.cars_left_out > 0 ? "left out of training:" : "kept in training, too many:",
          static_cast<long long>(s.filter.cars_in_alert), static_cast<long long>(s.filter.cars),
          static_cast<long long>(s.filter.events_left_out),
          static_cast<long long>(failing_cars(s.filter.left_out, truth, s.trained_on_to)));
    const auto t = step_truth(s, run, truth, eo);
    std::printf("      ground truth: candidate %lld alerts, %lld false; active %lld alerts, %lld false\n",
                static_cast<long long>(t.candidate_alerts), static_cast<long long>(t.candidate_false),
                static_cast<long long>(t.active_alerts), static_cast<long long>(t.active_false));
    std::printf("      unfamiliar events (not counted towards alerts): candidate %lld, active %lld\n",
                static_cast<long long>(s.candidate_summary.unfamiliar_events),
                static_cast<long long>(s.active.unfamiliar_events));
    std::printf("      false alerts by first signal: candidate %s; active %s\n",
                t.candidate_false_signals.empty() ? "none" : t.candidate_false_signals.c_str(),
                t.active_false_signals.empty() ? "none" : t.active_false_signals.c_str());
    if (!s.decision.promote)
      for (const auto& r : s.decision.reasons) std::printf("      %s\n", r.c_str());
  }
}

void print_modes(const ml::EvalReport& mine, const ml::EvalReport& ref) {
  std::printf("\nper mode (fleettwin | reference): detected/failures, median / p90 delay s; could show\n");
  for (std::size_t i = 0; i < mine.per_mode.size(); ++i) {
    const auto& m = mine.per_mode[i];
    const auto& r = ref.per_mode[i];
    std::printf("  %-26s %3lld/%-3lld %5.0f / %5.0f | %3lld/%-3lld %5.0f / %5.0f   %lld of %lld\n",
                m.mode.c_str(), static_cast<long long>(m.detected), static_cast<long long>(m.failures),
                m.median_delay_s, m.p90_delay_s, static_cast<long long>(r.detected),
                static_cast<long long>(r.failures), r.median_delay_s, r.p90_delay_s,
                static_cast<long long>(m.failures_shown), static_cast<long long>(m.failures));
  }
}

std::string steps_json(const ml::LifecycleRun& run) {
  std::string out = "{\"retrainings\":" + std::to_string(run.steps.size()) +
                    ",\"promotions\":" + std::to_string(run.promotions()) + ",\"steps\":[";
  for (std::size_t i = 0; i < run.steps.size(); ++i) {
    const auto& s = run.steps[i];
    if (i) out += ',';
    out += "{\"candidate\":\"" + s.candidate + "\",\"training_events\":" + std::to_string(s.training_events) +
           ",\"shadow_from\":" + std::to_string(s.shadow_from) +
           ",\"shadow_to\":" + std::to_string(s.shadow_to) +
           ",\"promoted\":" + (s.decision.promote ? "true" : "false") + "}";
  }
  return out + "]}";
}

/// `eval --lifecycle` without a history: the fleet simulated in this process, its events as `up --fast`
/// would store them (the simulator keeps every reading within its plausible range and rounds whole-number
/// signals itself, so nothing is flagged or changed on the way) and its ground truth. The fleet's start is
/// fixed: a car's behaviour depends only on its own time since the start, and the figures do not on the
/// clock.
std::vector<core::Telemetry> simulate(const EvalFlags& f, const Config& config,
                                      std::vector<sim::GroundTruth>& truth) {
  auto fc = app::fleet_config(config);
  fc.cars = static_cast<std::size_t>(f.cars);
  fc.duration_ms = f.hours * 3'600'000;
  if (f.seed >= 0) fc.seed = static_cast<uint64_t>(f.seed);
  fc.start_ms = 1'700'000'000'000;
  sim::Fleet fleet(fc);
  std::vector<core::Telemetry> events;
  events.reserve(fc.cars * static_cast<std::size_t>(fc.duration_ms / fc.interval_ms + 1));
  core::Telemetry t;
  while (fleet.next(t)) events.push_back(t);
  truth = fleet.take_failures();
  std::fprintf(stderr, "simulated %zu cars for %lld h (seed %llu): %zu events, %zu failures\n", fc.cars,
               static_cast<long long>(f.hours), static_cast<unsigned long long>(fc.seed), events.size(),
               truth.size());
  return events;
}

/// `eval --lifecycle`: both architectures through ml::run_lifecycle, each event scored by the model active
/// when it arrived.
int run_eval_lifecycle(EvalFlags& f, Config& config) {
  const bool simulated = f.source.kafka.empty() && f.source.data_dir.empty();
  std::vector<sim::GroundTruth> truth;
  auto events = simulated ? simulate(f, config, truth) : read_history(f.source, config);
  if (!simulated) truth = read_truth(f.ground_truth);
  ml::LifecycleOptions lo;
  lo.retrain_every_ms = parse_duration_ms(f.retrain_every);
  lo.train_window_ms = parse_duration_ms(f.train_window);
  if (lo.retrain_every_ms <= 0 || lo.train_window_ms <= 0)
    throw ConfigError("--retrain-every and --train-window must be positive");
  lo.monitor = stages::monitor_options(config);
  lo.margins = app::promotion_margins(config);
  lo.leave_out_alerted = config.get(keys::ml_train_leave_out_alerted);
  const int64_t t0 = events.front().ts;
  const int64_t hours = (events.back().ts - t0) / lo.retrain_every_ms;
  if (hours < 2) throw ConfigError("the history is shorter than twice --retrain-every " + f.retrain_every);
  const auto space = feature_space(config);
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  auto topts = app::train_options(config);
  topts.progress = false;  // one progress line per retraining instead
  auto run = [&](const char* name, const ml::Architecture& arch) {
    lo.progress = [&](const std::string& line) {
      std::fprintf(stderr, "[%6.0f s] %s %s\n", elapsed(), name, line.c_str());
    };
    auto trainer = [&](std::vector<core::Telemetry> window, const std::string& version) {
      std::fprintf(stderr, "[%6.0f s] %s training %s on %zu events\n", elapsed(), name, version.c_str(),
                   window.size());
      auto o = topts;
      o.version = std::string(name) + "-" + version;
      auto data = ml::make_training_data(window, "eval", space);
      return std::shared_ptr<const ml::Model>(ml::train_model(data, arch, o));
    };
    return ml::run_lifecycle(events, trainer, lo);
  };
  const auto ours = run("fleettwin", ml::fleettwin_architecture(space));
  // The reference architecture as `eval` always ran it (trained once, on the first period), unless asked to
  // go through the protocol too: half the training time of a run.
  ml::LifecycleRun reference;
  if (f.reference_lifecycle) {
    reference = run("reference", ml::reference_architecture(space));
  } else {
    reference.scoring_from = ours.scoring_from;
    std::vector<core::Telemetry> first(events.begin(),
                                       std::lower_bound(events.begin(), events.end(), ours.scoring_from,
                                                        [](const auto& e, int64_t ts) { return e.ts < ts; }));
    std::fprintf(stderr, "[%6.0f s] reference training once on %zu events\n", elapsed(), first.size());
    auto o = topts;
    o.version = "reference-once";
    auto data = ml::make_training_data(first, "eval", space);
    const std::shared_ptr<const ml::Model> model =
        ml::train_model(data, ml::reference_architecture(space), o);
    reference.alerts = replay(events, model, lo.monitor, ours.scoring_from, &reference.unfamiliar_events);
  }

  const int64_t from = ours.scoring_from;
  const double car_hours = scored_car_hours(events, from, config.get(keys::sim_interval).count());
  ml::EvalOptions eo;
  eo.window_ms = config.get(keys::ml_eval_window).count();
  eo.from_ts = from;
  eo.to_ts = events.back().ts - int64_t{5} * 60'000;  // too little data after a failure in the last 5 minutes
  eo.shown_from = ml::shown_failures(truth, events, eo.window_ms, space->catalog());
  auto mine = ml::evaluate(ours.alerts, ml::kAlertAnomaly, truth, ml::learned_modes(), car_hours, eo);
  auto ref = ml::evaluate(reference.alerts, ml::kAlertAnomaly, truth, ml::learned_modes(), car_hours, eo);
  mine.unfamiliar_events = ours.unfamiliar_events;
  ref.unfamiliar_events = reference.unfamiliar_events;
  const auto fw = ml::evaluate(ours.alerts, ml::kAlertOutdatedFirmware, truth,
                               {sim::FailureMode::kOutdatedFirmware}, car_hours, eo);

  std::printf(
      "\nlifecycle: first model on the first %s, then retrained every %s on the last %s, each candidate "
      "in shadow for %s before the gate; scored %.0f car-hours (%.1f s)\n",
      f.retrain_every.c_str(), f.retrain_every.c_str(), f.train_window.c_str(), f.retrain_every.c_str(),
      car_hours, elapsed());
  print_steps("fleettwin", ours, t0, truth, eo);
  if (f.reference_lifecycle)
    print_steps("reference", reference, t0, truth, eo);
  else
    std::printf("reference: trained once on the first %s (--reference-lifecycle: through the protocol too)\n",
                f.retrain_every.c_str());
  std::printf("\nlearned failure modes:\n%-20s %9s %7s %6s %9s %9s %12s %7s %13s\n", "model", "precision",
              "recall", "f1", "median_s", "p90_s", "false/1000h", "alerts", "detected");
  print_row("fleettwin", mine);
  print_row("reference", ref);
  print_modes(mine, ref);
  std::printf("\n%lld of %lld failures could show in their car's messages within the window; over those:\n",
              static_cast<long long>(mine.failures_shown), static_cast<long long>(mine.failures));
  for (const auto* r : {&mine, &ref})
    std::printf("  %-18s recall %.3f  F1 %.3f  median %.0f s  p90 %.0f s\n",
                r == &mine ? "fleettwin" : "reference", r->recall_shown, r->f1_shown, r->median_delay_shown_s,
                r->p90_delay_shown_s);
  std::printf("\nfleettwin: %lld anomalous events in unfamiliar conditions not counted towards alerts\n",
              static_cast<long long>(ours.unfamiliar_events));
  std::printf("\noutdated firmware (a rule, not learned):\n");
  print_row("firmware rule", fw);
  if (!f.json.empty()) {
    std::ofstream out(f.json);
    out << "{\"fleettwin\":" << mine.to_json() << ",\"reference\":" << ref.to_json()
        << ",\"outdated_firmware_rule\":" << fw.to_json() << ",\"lifecycle\":" << steps_json(ours)
        << ",\"reference_lifecycle\":" << steps_json(reference)
        << ",\"retrain_every_ms\":" << lo.retrain_every_ms << ",\"train_window_ms\":" << lo.train_window_ms
        << ",\"events\":" << events.size() << "}\n";
    if (!out) throw std::runtime_error("cannot write " + f.json);
  }
  return 0;
}

}  // namespace

void add_ml_commands(CommandLine& cl) {
  auto train = std::make_shared<TrainFlags>();
  auto* t =
      cl.app().add_subcommand("train", "Train the anomaly model from history and publish it to fleet.models");
  add_source_flags(t, train->source);
  t->add_option("--out", train->out, "Model artifact to write")->required();
  t->add_option("--architecture", train->architecture, "fleettwin (default) or reference");
  t->add_flag("--shadow", train->shadow, "Publish as the shadow candidate (scored, never alerts)");
  t->add_flag("--no-publish", train->no_publish, "Only write --out");
  cl.add(t, [train](Config& config, std::atomic<int>&) { return run_train(*train, config); });

  auto rollback = std::make_shared<RollbackFlags>();
  auto* model = cl.app().add_subcommand("model", "Manage the models on fleet.models");
  model->require_subcommand(1);
  auto* rb = model->add_subcommand("rollback", "Make an earlier model (kept by the trainer) the active one");
  rb->add_option("version", rollback->version, "Model version (GET /api/v1/models lists them)")->required();
  rb->add_option("--kafka", rollback->kafka, "Kafka bootstrap servers")->required();
  cl.add(rb, [rollback](Config& config, std::atomic<int>&) { return run_rollback(*rollback, config); });

  auto eval = std::make_shared<EvalFlags>();
  auto* e = cl.app().add_subcommand(
      "eval", "Train on the first part of history, score the rest, and compare alerts with the ground truth");
  add_source_flags(e, eval->source);
  e->add_option("--ground-truth", eval->ground_truth,
                "Ground truth of the simulator (JSON lines; required with --kafka or --data-dir)");
  e->add_option("--json", eval->json, "Write {\"fleettwin\": {...}, \"reference\": {...}} to this file");
  e->add_option(
      "--train-window", eval->train_window,
      "Event time at the start used for training (default 30m); with --lifecycle, each retraining's "
      "window (default 2h)");
  e->add_flag(
      "--lifecycle", eval->lifecycle,
      "Lifecycle protocol: retrain every --retrain-every on the last --train-window, shadow, promotion "
      "gate; each event scored by the model active when it arrived");
  e->add_option(
      "--retrain-every", eval->retrain_every,
      "With --lifecycle: the first model's training span, the retraining period and the shadow period "
      "(default 1h)");
  e->add_option("--cars", eval->cars, "With --lifecycle and no history: cars to simulate (default 2000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  e->add_option("--hours", eval->hours, "With --lifecycle and no history: simulated hours (default 8)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000}));
  e->add_option("--seed", eval->seed, "With --lifecycle and no history: the fleet's seed (default sim.seed)")
      ->check(CLI::NonNegativeNumber);
  e->add_flag("--reference-lifecycle", eval->reference_lifecycle,
              "With --lifecycle: the reference architecture goes through the protocol too (by default it is "
              "trained once on the first period)");
  cl.add(e, [eval](Config& config, std::atomic<int>&) {
    if (eval->train_window.empty()) eval->train_window = eval->lifecycle ? "2h" : "30m";
    return eval->lifecycle ? run_eval_lifecycle(*eval, config) : run_eval(*eval, config);
  });
}

}  // namespace fleettwin::cli
