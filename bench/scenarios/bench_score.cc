// `fleettwin bench score`: the score stage end to end on Kafka. Pre-fills fleet.telemetry
// with simulated Avro telemetry (schema registered as the process stage registers it), trains a model on the
// first events (or loads --model), then runs the real score stage (ScoreStage in a StageRunner, as
// `fleettwin score` runs it) from the earliest offset in a fresh group, timed from the first record it gets
// to caught up (everything read, lag 0, one fleet.scores record per input on the broker). Beside every Kafka
// run it scores the same events in memory (ml::Monitor over the same batches, no Kafka, no Avro), so the
// cost of the log and the codec shows as a ratio. CPU time (getrusage) makes both figures per core; medians
// of --runs are reported. See docs/benchmarks.md.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "app/log_factory.h"
#include "app/ml_setup.h"
#include "cli/commands.h"
#include "codec/avro.h"
#include "codec/schemas.h"
#include "core/metric_catalog.h"
#include "core/process_stats.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "ml/dataset.h"
#include "ml/monitor.h"
#include "ml/training.h"
#include "registry/client.h"
#include "registry/server.h"
#include "scenarios/bench_util.h"
#include "sim/fleet.h"
#include "stages/score/score_stage.h"
#include "stages/stage.h"

namespace fleettwin::cli {

namespace bench = app::bench;
using config::ConfigError;
using config::parse_duration_ms;

namespace {

namespace t = core::topics;
using Clock = std::chrono::steady_clock;
using Batches = std::vector<std::vector<core::Telemetry>>;

/// The flag values of `fleettwin bench score`.
struct BenchScoreFlags {
  std::string kafka, registry, model_path, json_path;
  std::string interval = "10s";
  int64_t cars = 1000;
  int64_t events = 1'000'000;
  int64_t train_events = 0;  ///< 0: the first tenth of the events
  int64_t runs = 3;
  int64_t seconds = 600;
  int64_t seed = 1;
  double failure_rate = 0.02;
};

/// One measured run: the score stage on Kafka and, beside it, ml::Monitor in memory on the same events.
struct ScoreRun {
  int64_t events = 0, scores = 0, alerts_raised = 0, alerts_cleared = 0, alert_records = 0, commands = 0;
  double seconds = 0, cpu_s = 0;
  double memory_seconds = 0, memory_cpu_s = 0;
  int64_t memory_alerts = 0;
  double per_s() const { return seconds > 0 ? static_cast<double>(events) / seconds : 0; }
  double per_core_s() const { return cpu_s > 0 ? static_cast<double>(events) / cpu_s : 0; }
  double memory_per_core_s() const {
    return memory_cpu_s > 0 ? static_cast<double>(events) / memory_cpu_s : 0;
  }
};

int64_t total(const std::vector<int64_t>& offsets) {
  int64_t n = 0;
  for (auto o : offsets) n += o;
  return n;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), 1, ',');
  return v < 0 ? "-" + s : s;
}

/// A Kafka broker of this benchmark's own, started with scripts/services/kafka (as the integration tests
/// start theirs) when no --kafka is given, and stopped with it. Main thread.
class LocalKafka {
 public:
  LocalKafka() : _script(std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/kafka") {
    spdlog::info("bench score: starting a Kafka broker ({} start)", _script);
    FILE* out = ::popen((_script + " start").c_str(), "r");
    if (!out) throw std::runtime_error("cannot run " + _script);
    std::string line;
    char buf[512];
    while (std::fgets(buf, sizeof buf, out)) line = buf;  // the last line is the address
    if (::pclose(out) != 0 || line.empty())
      throw std::runtime_error(_script + " start failed (see its output above); or pass --kafka BROKERS");
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    _address = line;
  }
  ~LocalKafka() {
    if (std::system((_script + " stop '" + _address + "' >/dev/null 2>&1").c_str()) != 0)
      spdlog::warn("bench score: stopping the broker at {} failed", _address);
  }
  LocalKafka(const LocalKafka&) = delete;
  LocalKafka& operator=(const LocalKafka&) = delete;
  const std::string& address() const { return _address; }

 private:
  std::string _script, _address;
};

/// The score stage with the time of its first batch noted: the benchmark's clock starts when the first
/// record reaches the stage, not when the consumer starts joining its group. Runs on the runner's thread;
/// first_batch() is read by the main thread.
class TimedStage final : public stages::Stage {
 public:
  explicit TimedStage(std::unique_ptr<stages::Stage> inner) : _inner(std::move(inner)) {}
  const stages::StageDescriptor& descriptor() const override { return _inner->descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override {
    if (!_started.load() && !batch.empty()) {
      _first = Clock::now();
      _started.store(true);
    }
    _inner->process(batch, out);
  }
  void tick(log::Producer& out) override { _inner->tick(out); }
  void flush_state(log::Producer& out) override { _inner->flush_state(out); }
  std::chrono::milliseconds commit_interval() const override { return _inner->commit_interval(); }
  void on_revoked(const std::vector<log::TopicPartition>& p) override { _inner->on_revoked(p); }
  void interrupt() override { _inner->interrupt(); }
  /// When the first record arrived; false before.
  bool first_batch(Clock::time_point& at) const {
    if (!_started.load()) return false;
    at = _first;
    return true;
  }

 private:
  std::unique_ptr<stages::Stage> _inner;
  std::atomic<bool> _started{false};
  Clock::time_point _first;
};

/// The simulated events, in the batches the in-memory side scores them in.
Batches simulate(const BenchScoreFlags& f, std::size_t batch) {
  sim::FleetConfig fc;
  fc.cars = static_cast<std::size_t>(f.cars);
  fc.interval_ms = parse_duration_ms(f.interval);
  fc.seed = static_cast<uint64_t>(f.seed);
  fc.failure_rate = f.failure_rate;
  fc.start_ms = 1'700'000'000'000;  // fixed: the same flags give the same events, on any day
  if (const auto problem = sim::validate(fc); !problem.empty()) throw ConfigError(problem);
  sim::Fleet fleet(fc);
  Batches out;
  core::Telemetry tel;
  for (int64_t n = 0; n < f.events && fleet.next(tel); ++n) {
    if (out.empty() || out.back().size() == batch) out.emplace_back().reserve(batch);
    out.back().push_back(tel);
  }
  return out;
}

/// Writes the events to fleet.telemetry as the process stage does (Avro, Confluent framing, key = car).
void prefill(log::KafkaLog& kafka, const Batches& batches, int32_t schema_id, int64_t expected) {
  auto producer = kafka.producer();
  std::atomic<int64_t> failed{0};
  std::string first_error;
  auto on_delivery = [&](const log::OutRecord&, int64_t, const std::string* error) {
    if (error && failed.fetch_add(1) == 0) first_error = *error;
  };
  const bool tty = ::isatty(STDERR_FILENO);
  int64_t sent = 0;
  auto next_progress = Clock::now() + std::chrono::seconds(1);
  for (const auto& batch : batches) {
    for (const auto& tel : batch) {
      log::OutRecord r;
      r.topic = t::kTelemetry;
      r.key = tel.car;
      codec::encode_avro_telemetry(tel, schema_id, r.value);
      producer->send(std::move(r), on_delivery);
      ++sent;
    }
    if (Clock::now() >= next_progress) {
      std::fprintf(stderr, "%spre-fill: %s / %s records to %s%s", tty ? "\r\033[K" : "",
                   with_commas(sent).c_str(), with_commas(expected).c_str(), t::kTelemetry, tty ? "" : "\n");
      next_progress += std::chrono::seconds(1);
    }
  }
  const int64_t unacked = producer->flush(std::chrono::seconds(120));
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (unacked > 0 || failed.load() > 0)
    throw std::runtime_error("pre-fill: " + std::to_string(std::max(unacked, failed.load())) +
                             " records not acknowledged by Kafka: " + first_error);
  spdlog::info("bench score: pre-filled {} with {} records", t::kTelemetry, sent);
}

/// ml::Monitor alone over the same batches: what the score stage does per event minus the log and Avro.
void score_in_memory(const Batches& batches, std::shared_ptr<const ml::Model> model,
                     const ml::MonitorOptions& options, ScoreRun& run) {
  ml::Monitor monitor(options);
  monitor.set_model(std::move(model));
  ml::MonitorOutput out;
  const double cpu0 = core::thread_cpu_seconds();
  const auto t0 = Clock::now();
  for (const auto& batch : batches) {
    out.clear();
    monitor.process(batch, out);
    for (const auto& a : out.alerts) run.memory_alerts += a.raised;
  }
  run.memory_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  run.memory_cpu_s = core::thread_cpu_seconds() - cpu0;
}

/// What the stage's run needs besides the log.
struct StageSetup {
  std::shared_ptr<const ml::Model> model;
  std::shared_ptr<registry::SchemaRegistryClient> registry;
  stages::ScoreStage::Options options;
  stages::RunnerOptions runner;
};

/// The score stage on Kafka from the earliest offset, in a fresh group, until it has read `expected`
/// records and the broker holds a score for each; throws when it does not get there within `max_wall`.
void score_on_kafka(log::KafkaLog& kafka, const StageSetup& setup, int64_t expected, int run_no,
                    std::chrono::seconds max_wall, const std::atomic<int>& stop_signals, ScoreRun& run) {
  core::Metrics metrics;
  auto slot = std::make_shared<stages::ModelSlot>();
  slot->set_active(setup.model);  // in use from the first batch: every event gets a score
  auto stage = std::make_unique<TimedStage>(std::make_unique<stages::ScoreStage>(
      setup.options, slot, metrics, registry::TelemetryReader(setup.registry)));
  TimedStage& timed = *stage;
  stages::RunnerOptions ro = setup.runner;
  ro.group = "fleettwin.bench.score." + std::to_string(::getpid()) + "." + std::to_string(run_no) + "." +
             std::to_string(Clock::now().time_since_epoch().count());
  const int64_t scores0 = total(kafka.end_offsets(t::kScores));
  const int64_t alerts0 = total(kafka.end_offsets(t::kAlerts));
  const int64_t commands0 = total(kafka.end_offsets(t::kCommands));

  stages::StageRunner runner(std::move(stage), kafka, metrics, ro);
  const double cpu0 = core::process_cpu_seconds();
  const auto started = Clock::now();
  runner.start();
  const bool tty = ::isatty(STDERR_FILENO);
  auto scored = [&] { return metrics.value(core::metric::kScoreScored); };
  auto next_progress = started + std::chrono::seconds(1);
  int64_t last_scored = 0;
  auto last_tick = started;
  Clock::time_point first, done;
  int64_t on_broker = 0;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!runner.running()) throw std::runtime_error("score stage stopped: " + runner.error());
    if (stop_signals.load() > 0) throw std::runtime_error("interrupted");
    const auto now = Clock::now();
    if (scored() >= expected && runner.lag() == 0) {
      on_broker = total(kafka.end_offsets(t::kScores)) - scores0;
      if (on_broker >= expected) {
        done = Clock::now();
        break;
      }
    }
    if (now - started > max_wall)
      throw std::runtime_error("run " + std::to_string(run_no) + ": " + std::to_string(scored()) + " of " +
                               std::to_string(expected) + " scored (" +
                               std::to_string(metrics.value(core::metric::kScoreUndecodable)) +
                               " undecodable) after " + std::to_string(max_wall.count()) + " s");
    if (now >= next_progress) {
      const double secs = std::chrono::duration<double>(now - last_tick).count();
      const int64_t n = scored();
      std::fprintf(stderr, "%s[run %d %.0fs] scored %s / %s | %s events/s | lag %s | alerts %s%s",
                   tty ? "\r\033[K" : "", run_no, std::chrono::duration<double>(now - started).count(),
                   with_commas(n).c_str(), with_commas(expected).c_str(),
                   with_commas(static_cast<int64_t>(static_cast<double>(n - last_scored) / secs)).c_str(),
                   with_commas(runner.lag()).c_str(),
                   with_commas(metrics.value(core::metric::kAlerts, core::metric::kAlertRaised)).c_str(),
                   tty ? "" : "\n");
      last_scored = n;
      last_tick = now;
      next_progress += std::chrono::seconds(1);
    }
  }
  run.cpu_s = core::process_cpu_seconds() - cpu0;
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!timed.first_batch(first)) first = started;
  runner.request_stop();
  runner.join();
  if (!runner.error().empty()) throw std::runtime_error("score stage: " + runner.error());
  run.events = scored();
  run.seconds = std::chrono::duration<double>(done - first).count();
  run.scores = on_broker;
  run.alerts_raised = metrics.value(core::metric::kAlerts, core::metric::kAlertRaised);
  run.alerts_cleared = metrics.value(core::metric::kAlerts, core::metric::kAlertCleared);
  run.alert_records = total(kafka.end_offsets(t::kAlerts)) - alerts0;
  run.commands = total(kafka.end_offsets(t::kCommands)) - commands0;
}

std::shared_ptr<const ml::Model> obtain_model(const BenchScoreFlags& f, const Config& config,
                                              const Batches& batches) {
  if (!f.model_path.empty()) {
    auto model = ml::load_artifact(f.model_path);
    spdlog::info("bench score: model {} from {}", model->meta.version, f.model_path);
    return model;
  }
  const int64_t wanted = f.train_events > 0 ? f.train_events : std::max<int64_t>(1'000, f.events / 10);
  std::vector<core::Telemetry> history;
  for (const auto& batch : batches) {
    for (const auto& tel : batch) {
      if (static_cast<int64_t>(history.size()) >= wanted) break;
      history.push_back(tel);
    }
  }
  spdlog::info("bench score: training {} on the first {} events", config.get(keys::ml_architecture),
               history.size());
  auto data = ml::make_training_data(history, "bench");
  auto model = ml::train_model(data, ml::architecture_by_name(config.get(keys::ml_architecture)),
                               app::train_options(config));
  spdlog::info("bench score: trained {} in {:.1f} s, threshold {:.4g}", model->meta.version,
               model->meta.train_seconds, model->meta.threshold);
  return model;
}

int run_bench_score(const BenchScoreFlags& f, Config& config, const std::atomic<int>& stop_signals) {
  if (f.train_events > f.events) throw ConfigError("--train-events cannot exceed --events");
  std::unique_ptr<LocalKafka> local;
  std::string brokers = f.kafka;
  if (brokers.empty()) {
    local = std::make_unique<LocalKafka>();
    brokers = local->address();
  }
  log::KafkaLog kafka(app::kafka_settings(config, brokers));
  const log::TopicConfig tc = app::topic_config(config);
  for (const char* topic : {t::kTelemetry, t::kScores, t::kAlerts, t::kCommands})
    kafka.create_topic(topic, tc);

  // The registry the records' schema ids come from: the given one, or one embedded here (as `up` embeds it).
  std::unique_ptr<registry::EmbeddedRegistry> embedded;
  std::string registry_url = f.registry;
  if (registry_url.empty()) {
    registry::EmbeddedRegistryOptions ro;
    ro.port = 0;
    embedded = std::make_unique<registry::EmbeddedRegistry>(ro);
    embedded->start();
    registry_url = embedded->url();
  }
  registry::SchemaRegistryClient registration(registry_url);
  const int32_t telemetry_id =
      registration.register_schema(registry::subject_for_topic(t::kTelemetry), codec::car_telemetry_schema());

  const auto max_batch = static_cast<std::size_t>(config.get(keys::stage_max_batch));
  spdlog::info("bench score: simulating {} events of {} cars", f.events, f.cars);
  const Batches batches = simulate(f, max_batch);
  int64_t events = 0;
  for (const auto& b : batches) events += static_cast<int64_t>(b.size());
  if (events < f.events) spdlog::warn("bench score: the simulation gave {} events", events);

  const int64_t already = total(kafka.end_offsets(t::kTelemetry));
  if (already == 0) {
    prefill(kafka, batches, telemetry_id, events);
  } else if (already == events) {
    spdlog::info("bench score: {} already holds {} records (pre-filled by an earlier run): scoring those",
                 t::kTelemetry, already);
  } else {
    throw ConfigError(std::string(t::kTelemetry) + " on " + brokers + " holds " + std::to_string(already) +
                      " records, not the " + std::to_string(events) +
                      " this benchmark writes: give a fresh broker, or omit --kafka to start one");
  }

  StageSetup setup;
  setup.model = obtain_model(f, config, batches);
  setup.registry = std::make_shared<registry::SchemaRegistryClient>(registry_url);
  setup.options.monitor = stages::monitor_options(config);
  setup.options.score_schema_id =
      registration.register_schema(registry::subject_for_topic(t::kScores), codec::anomaly_score_schema());
  setup.options.alert_schema_id =
      registration.register_schema(registry::subject_for_topic(t::kAlerts), codec::alert_schema());
  setup.options.warmup_ms = 0;  // the model is given: the stage never trains
  setup.runner.max_batch = max_batch;
  setup.runner.batch_window = config.get(keys::stage_batch_window);

  std::vector<double> rate, per_core, memory_per_core, ratio;
  std::vector<ScoreRun> runs;
  for (int i = 1; i <= f.runs; ++i) {
    ScoreRun r;
    score_in_memory(batches, setup.model, setup.options.monitor, r);
    score_on_kafka(kafka, setup, events, i, std::chrono::seconds(f.seconds), stop_signals, r);
    std::printf(
        "run %d: Kafka %s events in %.2f s: %.0f events/s, %.2f CPU s: %.0f events/s per core; %s scores, "
        "%lld alerts written (%lld raised, %lld cleared), %lld schedule_service commands | in memory "
        "(ml::Monitor): %.2f s, %.0f events/s per core, %lld alerts raised\n",
        i, with_commas(r.events).c_str(), r.seconds, r.per_s(), r.cpu_s, r.per_core_s(),
        with_commas(r.scores).c_str(), static_cast<long long>(r.alert_records),
        static_cast<long long>(r.alerts_raised), static_cast<long long>(r.alerts_cleared),
        static_cast<long long>(r.commands), r.memory_seconds, r.memory_per_core_s(),
        static_cast<long long>(r.memory_alerts));
    std::fflush(stdout);
    // Alert counts of the two sides may differ slightly: the firmware rule follows the fleet's newest
    // version, which depends on how the partitions interleave; scores and commands may not.
    if (r.scores != events || r.commands != r.alerts_raised ||
        r.alert_records != r.alerts_raised + r.alerts_cleared)
      throw std::runtime_error("run " + std::to_string(i) + ": " + std::to_string(r.scores) + " scores for " +
                               std::to_string(events) + " events, " + std::to_string(r.commands) +
                               " commands and " + std::to_string(r.alert_records) + " alert records for " +
                               std::to_string(r.alerts_raised) + " raised alerts");
    rate.push_back(r.per_s());
    per_core.push_back(r.per_core_s());
    memory_per_core.push_back(r.memory_per_core_s());
    ratio.push_back(r.per_core_s() > 0 ? r.memory_per_core_s() / r.per_core_s() : 0);
    runs.push_back(r);
  }
  std::printf(
      "median of %lld runs, %s events, %lld cars: score stage on Kafka %.0f events/s, %.0f events/s "
      "per core; in memory (ml::Monitor) %.0f events/s per core; in memory / Kafka per core %.2fx\n",
      static_cast<long long>(f.runs), with_commas(events).c_str(), static_cast<long long>(f.cars),
      bench::median(rate), bench::median(per_core), bench::median(memory_per_core), bench::median(ratio));
  if (!f.json_path.empty()) {
    std::ofstream out(f.json_path);
    out << "{\"events\":" << events << ",\"cars\":" << f.cars << ",\"runs\":" << f.runs << ",\"model\":\""
        << setup.model->meta.version << "\",\"kafka_events_per_s\":" << bench::median(rate)
        << ",\"kafka_events_per_core_s\":" << bench::median(per_core)
        << ",\"memory_events_per_core_s\":" << bench::median(memory_per_core)
        << ",\"ratio\":" << bench::median(ratio) << ",\"scores\":" << runs.back().scores
        << ",\"alerts_written\":" << runs.back().alert_records
        << ",\"alerts_raised\":" << runs.back().alerts_raised << ",\"commands\":" << runs.back().commands
        << "}\n";
    if (!out) throw std::runtime_error("cannot write " + f.json_path);
  }
  if (embedded) embedded->stop();
  return 0;
}

}  // namespace

void add_bench_score_commands(CommandLine& cl) {
  auto flags = std::make_shared<BenchScoreFlags>();
  auto* bench = cl.find({"bench"});
  auto* cmd = bench->add_subcommand("score",
                                    "Score stage events/s on Kafka (pre-filled fleet.telemetry -> "
                                    "fleet.scores), vs ml::Monitor in memory");
  cmd->add_option("--kafka", flags->kafka,
                  "Kafka bootstrap servers with an empty fleet.telemetry (default: start a broker with "
                  "scripts/services/kafka)");
  cmd->add_option("--schema-registry", flags->registry, "Registry URL (default: an embedded one)");
  cmd->add_option("--cars", flags->cars, "Simulated cars")->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--events", flags->events, "Events to pre-fill and score")
      ->check(CLI::Range(1'000, 100'000'000));
  cmd->add_option("--interval", flags->interval, "Simulated interval between a car's events");
  cmd->add_option("--seed", flags->seed, "Simulator seed");
  cmd->add_option("--failure-rate", flags->failure_rate, "Failures per car per simulated hour")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--model", flags->model_path, "Model artifact to score with (default: train one)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--train-events", flags->train_events,
                  "Without --model: train on the first N events (default: a tenth)")
      ->check(CLI::Range(1'000, 100'000'000));
  cmd->add_option("--runs", flags->runs, "Runs (medians reported)")->check(CLI::Range(1, 50));
  cmd->add_option("--seconds", flags->seconds, "Wall time limit of one run")->check(CLI::Range(1, 7200));
  cmd->add_option("--json", flags->json_path, "Write the medians as JSON");
  cl.add(cmd,
         [flags](Config& config, std::atomic<int>& stop) { return run_bench_score(*flags, config, stop); });
}

}  // namespace fleettwin::cli
