#include "app/pipeline.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/api_runtime.h"
#include "app/ml_setup.h"
#include "app/mqtt_front.h"
#include "app/sim_source.h"
#include "app/store_factory.h"
#include "codec/avro.h"
#include "codec/registry_client.h"
#include "codec/registry_server.h"
#include "core/clock.h"
#include "core/process_stats.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "log/memory/memory_log.h"
#include "stages/registry.h"
#include "store/sqlite/sqlite_store.h"

namespace fleettwin::app {

using config::Config;
using config::ConfigError;
using config::parse_host_port;
namespace keys = config::keys;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string RunSummary::to_json() const {
  std::ostringstream o;
  o << "{\"cars\":" << cars << ",\"published\":" << published << ",\"injected_invalid\":" << injected_invalid
    << ",\"processed\":" << processed << ",\"records_in\":" << records_in << ",\"valid\":" << valid
    << ",\"dlq\":" << dlq << ",\"stored_telemetry\":" << stored_telemetry
    << ",\"stored_this_run\":" << stored_this_run << ",\"twins\":" << twins
    << ",\"twins_behind\":" << twins_behind << ",\"lost\":" << lost << ",\"duplicates\":" << duplicates
    << ",\"failures\":" << failures << ",\"elapsed_s\":" << elapsed_s << ",\"msgs_per_s\":" << msgs_per_s
    << ",\"p50_latency_ms\":" << p50_latency_ms << ",\"p99_latency_ms\":" << p99_latency_ms
    << ",\"peak_rss_mb\":" << peak_rss_mb << ",\"clean\":" << (clean ? "true" : "false") << "}";
  return o.str();
}

namespace {

/// The simulator settings a data dir was started with; a resumed run must use the same ones, or the
/// resumed cars would not continue the streams they started.
struct SimState {
  int64_t cars = 0, seed = 0, interval_ms = 0, start_ms = 0;
};

SimState load_or_create_sim_state(const fs::path& path, const SimState& wanted) {
  std::ifstream in(path);
  if (!in) {
    std::ofstream out(path);
    out << wanted.cars << ' ' << wanted.seed << ' ' << wanted.interval_ms << ' ' << wanted.start_ms << '\n';
    if (!out) throw std::runtime_error("cannot write " + path.string());
    return wanted;
  }
  SimState s;
  in >> s.cars >> s.seed >> s.interval_ms >> s.start_ms;
  if (!in) throw std::runtime_error(path.string() + " is damaged; remove it or use another --data-dir");
  if (s.seed != wanted.seed || s.interval_ms != wanted.interval_ms || s.cars != wanted.cars) {
    throw ConfigError("data dir was started with --cars " + std::to_string(s.cars) + " --seed " +
                      std::to_string(s.seed) + " --interval " + std::to_string(s.interval_ms) +
                      "ms; resume it with the same settings, or use another --data-dir");
  }
  return s;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return v < 0 ? "-" + s : s;
}

}  // namespace

Roles Roles::only(const std::string& role) {
  Roles r{false, false, false, false, false};
  if (role == "score") r.score = true;
  if (role == "sim") r.sim = true;
  if (role == "process") r.process = true;
  if (role == "twin") r.twin = true;
  if (role == "sink") r.sink = true;
  return r;
}

namespace {

std::vector<core::Twin> load_twins(store::TwinStore& store) {
  std::vector<core::Twin> twins;
  store::TwinQuery q;
  q.limit = 10000;
  for (;;) {
    auto page = store.list_twins(q);
    if (page.empty()) break;
    q.after_id = page.back().id;
    twins.insert(twins.end(), std::make_move_iterator(page.begin()), std::make_move_iterator(page.end()));
  }
  return twins;
}

/// The twin changelog read to its end: the state a twin stage starts from when it has no store of its own
/// (distributed mode). A throwaway group that never commits reads the compacted topic from the beginning.
std::vector<core::Twin> load_twins(log::Log& log) {
  auto consumer = log.consumer("fleettwin.twin.bootstrap." + std::to_string(::getpid()) + "." +
                               std::to_string(core::wall_clock_ms()));
  consumer->subscribe({core::topics::kTwins});
  std::unordered_map<std::string, core::Twin> latest;
  core::Twin twin;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool assigned = false;
  while (std::chrono::steady_clock::now() < deadline) {
    auto batch = consumer->poll(10000, std::chrono::milliseconds(500));
    assigned = assigned || !consumer->assignment().empty();
    for (const auto& r : batch) {
      if (!codec::twin_from_json(r.value, twin, &error)) continue;
      auto& kept = latest[twin.id];
      if (std::pair(twin.reported.seq, twin.version) >= std::pair(kept.reported.seq, kept.version))
        kept = twin;
    }
    if (assigned && batch.empty() && consumer->lag() == 0) break;
  }
  consumer->close();
  std::vector<core::Twin> out;
  for (auto& [id, t] : latest) out.push_back(std::move(t));
  return out;
}

}  // namespace

RunSummary run_pipeline(const Config& config, const RunControl& control, const Roles& roles) {
  const std::string brokers = config.get(keys::kafka_brokers);
  const bool distributed = !brokers.empty();
  if (!distributed && !roles.all())
    throw ConfigError(
        "a single role needs --kafka BROKERS; to run everything in one process use `fleettwin up`");

  const fs::path data_dir = config.get(keys::data_dir);
  const bool needs_dir = roles.sink || roles.sim || !distributed;
  std::error_code ec;
  if (needs_dir) fs::create_directories(data_dir, ec);
  if (ec) throw ConfigError("data_dir " + data_dir.string() + ": " + ec.message());
  std::string ground_truth = config.get(keys::ground_truth);
  if (ground_truth.empty()) ground_truth = (data_dir / "ground_truth.jsonl").string();

  const bool fast = config.get(keys::sim_fast);
  const std::string replay = config.get(keys::sim_replay);
  if (!replay.empty() && !fs::exists(replay)) throw ConfigError("--replay: no such file " + replay);

  // The log.
  log::TopicConfig topic_config;
  topic_config.partitions = static_cast<int32_t>(config.get(keys::log_partitions));
  topic_config.replication = static_cast<int32_t>(config.get(keys::log_replication));
  topic_config.capacity = config.get(keys::log_capacity);
  std::unique_ptr<log::Log> log;
  if (distributed) {
    auto settings = log::KafkaLog::settings_from_config(config.passthrough(), "kafka.");
    settings["bootstrap.servers"] = brokers;
    log = std::make_unique<log::KafkaLog>(std::move(settings));
    spdlog::info("log: Kafka at {}", brokers);
  } else {
    log = std::make_unique<log::MemoryLog>(topic_config);
  }
  for (const char* t :
       {core::topics::kTelemetryRaw, core::topics::kTelemetry, core::topics::kTelemetryDlq,
        core::topics::kScores, core::topics::kAlerts, core::topics::kCommands, core::topics::kCommandAcks})
    log->create_topic(t, topic_config);
  log::TopicConfig compacted = topic_config;
  compacted.compacted = true;
  // Changelogs keep the latest record per key: the twin of every car, the newest model artifact.
  for (const char* t : {core::topics::kTwins, core::topics::kModels}) log->create_topic(t, compacted);

  // The schema registry: records always carry ids the registry gave out.
  std::unique_ptr<codec::EmbeddedRegistry> embedded_registry;
  std::string registry_url = config.get(keys::schema_registry);
  if (registry_url.empty() && roles.process) {
    if (!roles.all())
      throw ConfigError(
          "the process role writes Avro: give it --schema-registry URL (e.g. of `fleettwin registry`)");
    const auto [host, port] = parse_host_port(config.get(keys::registry_listen), "--registry-listen");
    codec::EmbeddedRegistryOptions ro;
    ro.host = host;
    ro.port = port;
    fs::create_directories(data_dir / "registry", ec);
    ro.journal_path = (data_dir / "registry" / "schemas.jsonl").string();
    embedded_registry = std::make_unique<codec::EmbeddedRegistry>(ro);
    try {
      embedded_registry->start();
    } catch (const std::exception& e) {
      throw ConfigError(
          "schema registry: cannot listen on " + config.get(keys::registry_listen) + " (" + e.what() +
          "); pass --registry-listen HOST:PORT (port 0 picks a free one) or --schema-registry URL");
    }
    registry_url = embedded_registry->url();
    spdlog::info("schema registry: embedded at {}", registry_url);
  }
  int32_t telemetry_schema_id = 0;
  if (roles.process) {
    codec::SchemaRegistryClient registry(registry_url);
    telemetry_schema_id = registry.register_schema(codec::subject_for_topic(core::topics::kTelemetry),
                                                   codec::car_telemetry_schema());
    spdlog::info("schema: {} registered as id {}", codec::subject_for_topic(core::topics::kTelemetry),
                 telemetry_schema_id);
  }

  // Scores and alerts are Avro too (codec/schemas.h), under their topics' subjects.
  int32_t score_schema_id = 0, alert_schema_id = 0;
  if (roles.score) {
    if (registry_url.empty())
      throw ConfigError(
          "the score role writes Avro: give it --schema-registry URL (e.g. of `fleettwin registry`)");
    codec::SchemaRegistryClient registry(registry_url);
    score_schema_id = registry.register_schema(codec::subject_for_topic(core::topics::kScores),
                                               codec::anomaly_score_schema());
    alert_schema_id =
        registry.register_schema(codec::subject_for_topic(core::topics::kAlerts), codec::alert_schema());
  }

  // Store and resume point.
  std::unique_ptr<store::TwinStore> control_store;
  std::vector<std::pair<std::string, int64_t>> resume;
  std::vector<core::Twin> twins;
  if (roles.sink || roles.sim) control_store = store_opener(config)();  // SQLite, or MongoDB with --mongo
  if (roles.sim && replay.empty()) resume = control_store->max_seq_per_car();
  if (roles.twin) twins = distributed ? load_twins(*log) : load_twins(*control_store);
  if (!resume.empty())
    spdlog::info("resuming on {}: {} cars already stored, {} twins", data_dir.string(), resume.size(),
                 twins.size());

  SimSourceOptions so;
  int64_t start_ms = core::wall_clock_ms() / 1000 * 1000;
  if (roles.sim) {
    so.fleet.cars = static_cast<std::size_t>(config.get(keys::sim_cars));
    so.fleet.interval_ms = config.get(keys::sim_interval).count();
    so.fleet.seed = static_cast<uint64_t>(config.get(keys::sim_seed));
    so.fleet.failure_rate = config.get(keys::sim_failure_rate);
    so.fleet.ramp_ms = config.get(keys::sim_failure_ramp).count();
    const SimState state = load_or_create_sim_state(
        data_dir / "sim.state",
        // Whole seconds: a simulated fleet starts on a round time, which keeps ts readable.
        SimState{static_cast<int64_t>(so.fleet.cars), static_cast<int64_t>(so.fleet.seed),
                 so.fleet.interval_ms, start_ms});
    start_ms = state.start_ms;
    so.fleet.start_ms = state.start_ms;
    so.fleet.duration_ms = config.get(keys::sim_duration).count();
    if (const auto problem = sim::validate(so.fleet); !problem.empty()) throw ConfigError(problem);
    so.fast = fast;
    so.replay_csv = replay;
    so.inject_invalid = config.get(keys::sim_inject_invalid);
    so.ground_truth_path = ground_truth;
    so.resume = resume;
  }

  core::Metrics metrics;
  core::Histogram latency;
  // Real time: wall clock. Simulated: the simulator moves this clock; a stage without the simulator in its
  // process follows wall time (its own timers use event time, see TwinStage).
  core::SimClock clock(roles.sim ? start_ms : core::wall_clock_ms());

  stages::StageContext ctx{metrics, clock, latency, store_opener(config, &metrics)};
  ctx.process.telemetry_schema_id = telemetry_schema_id;
  ctx.process.max_payload_bytes = static_cast<std::size_t>(config.get(keys::codec_max_payload_bytes));
  ctx.twin.offline_after_ms = config.get(keys::twin_offline_after).count();
  ctx.twin.flush_interval_ms = config.get(keys::twin_flush_interval).count();
  ctx.initial_twins = std::move(twins);
  // Readers resolve each record's writer schema by id when a registry is known (roles take
  // --schema-registry).
  if (!registry_url.empty()) ctx.registry = std::make_shared<codec::SchemaRegistryClient>(registry_url);
  ctx.score.monitor = monitor_options(config);
  ctx.score.score_schema_id = score_schema_id;
  ctx.score.alert_schema_id = alert_schema_id;
  ctx.score.warmup_ms = config.get(keys::ml_warmup).count();
  ctx.models = std::make_shared<stages::ModelSlot>();
  // The first model: trained by the score stage after the warm-up, unless one arrives on fleet.models.
  if (roles.score && ctx.score.warmup_ms > 0) ctx.score_trainer = warmup_trainer(config);
  stages::RunnerOptions ro;
  ro.max_batch = static_cast<std::size_t>(config.get(keys::stage_max_batch));
  ro.batch_window = config.get(keys::stage_batch_window);

  std::vector<std::unique_ptr<stages::StageRunner>> runners;
  for (const auto& entry : stages::registry()) {
    const auto& name = entry.descriptor().name;
    const bool wanted = (name == "process" && roles.process) || (name == "twin" && roles.twin) ||
                        (name == "sink" && roles.sink) || (name == "score" && roles.score);
    if (!wanted) continue;
    stages::RunnerOptions options = ro;
    const std::string group = config.get(keys::group);
    if (!group.empty() && !roles.all()) options.group = group;  // one stage here: the group is its own
    runners.push_back(std::make_unique<stages::StageRunner>(entry.make(ctx), *log, metrics, options));
  }
  // Counted before the sink starts writing: rows it stores must not count as "before", and on FerretDB
  // this count is a scan of the whole collection inside one SQLite read transaction. Run while the sink
  // writes (a restarted sink catching up), that reader keeps the WAL from being checkpointed: the WAL grew
  // to ~1 GB within a minute, every request slowed down, and the first commit after the scan stalled in a
  // checkpoint of the whole WAL (the kill -9 test's "hung" restart).
  const int64_t stored_before = control_store && roles.sink ? control_store->history_stats().rows : 0;
  // Models published on fleet.models (by `fleettwin train`, or by this score stage) reach the score stage
  // through the watcher, while it runs. One already published is loaded before the stage reads its first
  // event: else the first batches would go unscored, and could even start a warm-up training that replaces
  // the operator's model on fleet.models.
  std::unique_ptr<stages::ModelWatcher> model_watcher;
  if (roles.score) {
    model_watcher = std::make_unique<stages::ModelWatcher>(
        *log, ctx.models, [](std::string_view bytes) { return ml::decode_artifact(bytes); }, metrics);
    model_watcher->start();
    int64_t published_models = 0;
    for (const auto end : log->end_offsets(core::topics::kModels)) published_models += end;
    auto read_one = [&] {
      return metrics.value("fleettwin_models_loaded_total") +
                 metrics.value("fleettwin_models_rejected_total") >
             0;
    };
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (published_models > 0 && !read_one() && Clock::now() < until &&
           !(control.stop_signals && control.stop_signals->load() > 0))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (published_models > 0 && !read_one())
      spdlog::warn("score: no model read from {} within 60 s; scoring starts without one",
                   core::topics::kModels);
  }
  for (auto& r : runners) r->start();
  // The REST API and dashboard of `up` (a distributed deployment runs `fleettwin api` on its own).
  std::unique_ptr<api::ApiServer> api_server;
  if (roles.all() && !config.get(keys::http_listen).empty())
    api_server =
        start_api_server(config, ApiHost{&metrics, log.get(), ctx.open_store, data_dir.string(), {}});

  // `up --mqtt`: cars on MQTT connections through brokers and the bridge instead of direct injection.
  auto& published = metrics.counter("fleettwin_sim_published_total", "");
  MqttFront mqtt_front;
  const bool mqtt_mode = roles.all() && !config.get(keys::mqtt_brokers).empty();
  if (mqtt_mode) {
    if (fast) throw ConfigError("--mqtt runs the cars in real time over the network; drop --fast");
    if (!replay.empty()) throw ConfigError("--mqtt simulates cars; --replay is not supported with it");
    mqtt_front.start(config, so.fleet, so.ground_truth_path, *log, metrics, clock, published,
                     (data_dir / "mqtt").string());
  }

  std::unique_ptr<SimSource> source;
  if (roles.sim && !mqtt_mode) source = std::make_unique<SimSource>(so, *log, &clock, metrics);
  const auto started = Clock::now();
  if (source) source->start();
  // Without the simulator here, a stage role runs until stopped.
  auto feeding = [&] { return mqtt_mode ? mqtt_front.running() : source ? source->running() : true; };

  auto& stored = metrics.counter("fleettwin_telemetry_stored_total", "");
  auto& dlq = metrics.counter("fleettwin_dlq_total", "", "stage=\"process\"");
  auto& online = metrics.gauge("fleettwin_cars_online", "");
  auto& processed = metrics.counter("fleettwin_records_in_total", "", "stage=\"process\"");
  const bool tty = isatty(STDERR_FILENO);
  int64_t last_count = 0;
  auto last_tick = started;
  bool hard_stop = false;
  bool failed = false;
  auto print_progress = [&](bool final_line) {
    const auto now = Clock::now();
    const double secs = std::chrono::duration<double>(now - last_tick).count();
    // The rate of what this process does first: publishing with the simulator, else reading its input.
    int64_t count = roles.sim ? published.value() : 0;
    if (!roles.sim)
      for (auto& r : runners)
        count = std::max(count, metrics.value("fleettwin_records_in_total{stage=\"" +
                                              r->stage().descriptor().name + "\"}"));
    const auto rate = static_cast<int64_t>(secs > 0 ? static_cast<double>(count - last_count) / secs : 0);
    last_count = count;
    last_tick = now;
    int64_t lag = 0;
    for (auto& r : runners) lag += r->lag();
    const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
    std::string line = "[" + std::to_string(elapsed) + "s] ";
    if (roles.twin) line += "cars online " + with_commas(online.value()) + " | ";
    line += with_commas(rate) + " msg/s";
    if (roles.sim) line += " | published " + with_commas(published.value());
    if (roles.process)
      line += " | processed " + with_commas(processed.value()) + " | DLQ " + with_commas(dlq.value());
    if (roles.sink) line += " | stored " + with_commas(stored.value());
    line += " | lag " + with_commas(lag);
    std::fprintf(stderr, "%s%s%s", tty ? "\r\033[K" : "", line.c_str(), (tty && !final_line) ? "" : "\n");
    std::fflush(stderr);
  };

  // Main thread: watch, report, and stop on signal, wall limit, end of simulation or a failed stage.
  auto next_progress = started + std::chrono::seconds(1);
  int64_t idle_in = -1;
  auto idle_since = Clock::now();
  while (feeding()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (control.stop_when_caught_up && !source) {
      int64_t in = 0, lag = 0;
      for (auto& r : runners) {
        in += metrics.value("fleettwin_records_in_total{stage=\"" + r->stage().descriptor().name + "\"}");
        lag += r->lag();
      }
      if (in != idle_in || lag != 0) {
        idle_in = in;
        idle_since = Clock::now();
      } else if (in > 0 && Clock::now() - idle_since > std::chrono::seconds(1)) {
        break;
      }
    }
    if (control.stop_signals && control.stop_signals->load() > 0) break;
    if (control.max_wall_ms > 0 && Clock::now() - started >= std::chrono::milliseconds(control.max_wall_ms))
      break;
    bool stage_failed = false;
    for (auto& r : runners) stage_failed |= !r->running();
    if (stage_failed) {
      failed = true;
      break;
    }
    if (control.progress && Clock::now() >= next_progress) {
      print_progress(false);
      next_progress += std::chrono::seconds(1);
    }
  }
  if (source) {
    source->request_stop();
    source->join();
    if (!source->error().empty()) failed = true;
  }
  if (mqtt_mode && !mqtt_front.stop()) failed = true;

  // Drain in pipeline order: each stage finishes its input once everything upstream has stopped writing.
  // A role process on its own (no upstream here) stops after its current batch instead: others may still
  // be writing, and its group takes over where it committed.
  for (auto& r : runners) {
    if (failed || (control.stop_signals && control.stop_signals->load() > 1) || !roles.sim) {
      hard_stop = roles.sim;
      r->request_stop();
    } else {
      r->request_drain();
    }
    while (r->running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (control.stop_signals && control.stop_signals->load() > 1) r->request_stop();
      if (control.progress && Clock::now() >= next_progress) {
        print_progress(false);
        next_progress += std::chrono::seconds(1);
      }
    }
    r->join();
  }
  if (control.progress) print_progress(true);
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

  RunSummary s;
  s.cars = static_cast<int64_t>(so.fleet.cars);
  s.published = published.value();
  s.injected_invalid = metrics.value("fleettwin_sim_injected_invalid_total");
  s.processed = processed.value();
  for (auto& r : runners)
    s.records_in +=
        metrics.value("fleettwin_records_in_total{stage=\"" + r->stage().descriptor().name + "\"}");
  s.valid = metrics.value("fleettwin_telemetry_valid_total");
  s.twin_writes = metrics.value("fleettwin_twin_writes_total");
  s.dlq = dlq.value();
  s.failures = metrics.value("fleettwin_sim_failures_total");
  for (auto& r : runners)
    if (!r->error().empty()) s.clean = false;
  if (source && !source->error().empty()) s.clean = false;
  if (mqtt_mode && !mqtt_front.error().empty()) s.clean = false;
  s.elapsed_s = elapsed;
  s.p50_latency_ms = static_cast<double>(latency.quantile_us(0.50)) / 1000.0;
  s.p99_latency_ms = static_cast<double>(latency.quantile_us(0.99)) / 1000.0;

  if (roles.sink) {
    const auto stats = control_store->history_stats();
    s.stored_telemetry = stats.rows;
    s.stored_this_run = stats.rows - stored_before;
    s.twins = stats.twins;
    s.duplicates = stats.rows - stats.distinct;
    s.msgs_per_s = elapsed > 0 ? static_cast<double>(s.stored_this_run) / elapsed : 0;
    if (mqtt_mode && config.get(keys::mqtt_qos) == 1) {
      // Every QoS 1 message the cars published was acknowledged by a broker and then by the bridge.
      s.lost = std::max<int64_t>(0, s.published - s.stored_this_run);
    }
    if (source) {
      // The exactness check: the store against what the simulator published, (car, seq) by (car, seq).
      const auto expected = source->expected_last_seq();
      int64_t expected_total = 0;
      for (const auto& [car, seq] : expected) expected_total += seq;
      int64_t beyond = 0;  // stored seqs the simulator never published (must be 0)
      for (const auto& [car, seq] : control_store->max_seq_per_car()) {
        auto it = expected.find(car);
        const int64_t exp = it == expected.end() ? 0 : it->second;
        if (seq > exp) beyond += seq - exp;
      }
      if (replay.empty()) s.lost = std::max<int64_t>(0, expected_total - (stats.distinct - beyond));
      for (const auto& twin : load_twins(*control_store)) {
        auto it = expected.find(twin.id);
        if (it != expected.end() && twin.reported.seq != it->second) ++s.twins_behind;
      }
    }
  } else {
    // What this process did: published with the simulator, else read by its stages (a score or twin role
    // processes nothing itself).
    s.msgs_per_s = elapsed > 0 ? static_cast<double>(roles.sim ? s.published : s.records_in) / elapsed : 0;
  }
  s.peak_rss_mb = core::peak_rss_mb();
  if (hard_stop && !failed) spdlog::warn("stopped without draining: the next run on this data dir resumes");
  if (failed) {
    std::string why = source ? source->error() : mqtt_front.error();
    for (auto& r : runners)
      if (!r->error().empty())
        why += (why.empty() ? "" : "; ") + r->stage().descriptor().name + ": " + r->error();
    throw std::runtime_error("pipeline failed: " + why);
  }
  if (embedded_registry) embedded_registry->stop();
  return s;
}

ProcessBench bench_process_alone(const Config& base, int64_t max_wall_ms) {
  Config config = base;
  config.set(keys::group, "fleettwin.bench.process." + std::to_string(::getpid()), "bench");
  codec::EmbeddedRegistryOptions ro;
  ro.port = 0;
  codec::EmbeddedRegistry registry(ro);
  registry.start();
  config.set(keys::schema_registry, registry.url(), "bench");
  const double cpu0 = core::process_cpu_seconds();
  RunControl control;
  control.max_wall_ms = max_wall_ms;
  control.progress = true;
  control.stop_when_caught_up = true;
  const auto s = run_pipeline(config, control, Roles::only("process"));
  const double cpu1 = core::process_cpu_seconds();
  registry.stop();
  ProcessBench b;
  b.records = s.processed;
  b.cpu_s = cpu1 - cpu0;
  // Wall time includes the one idle second that tells the run it caught up.
  b.msgs_per_s = s.elapsed_s > 1 ? static_cast<double>(s.processed) / (s.elapsed_s - 1) : 0;
  b.msgs_per_cpu_s = b.cpu_s > 0 ? static_cast<double>(s.processed) / b.cpu_s : 0;
  return b;
}

}  // namespace fleettwin::app
