#include "app/pipeline.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api/auth.h"
#include "app/aggregate_state.h"
#include "app/api_runtime.h"
#include "app/log_factory.h"
#include "app/ml_setup.h"
#include "app/mqtt_front.h"
#include "app/rate_sampler.h"
#include "app/store_factory.h"
#include "app/uplink.h"
#include "catalog/catalog.h"
#include "codec/avro.h"
#include "codec/schemas.h"
#include "core/clock.h"
#include "core/metric_catalog.h"
#include "core/process_stats.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "log/memory/memory_log.h"
#include "registry/client.h"
#include "registry/server.h"
#include "sim/feed/sim_source.h"
#include "stages/aggregate/aggregate_resume.h"
#include "stages/dead_letters.h"
#include "stages/registry.h"
#include "stages/sink/sink_stage.h"
#include "stages/twin/twin_resume.h"
#include "store/sqlite/sqlite_store.h"

namespace fleettwin::app {

using config::Config;
using config::ConfigError;
using config::parse_host_port;
namespace keys = config::keys;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

/// The clock of a run: the simulator's when it feeds the log in this process (it advances it, with --fast
/// faster than real time), else wall time. Thread-safe.
class RunClock final : public core::Clock {
 public:
  int64_t now_ms() const override { return simulated ? sim.now_ms() : core::wall_clock_ms(); }
  core::SimClock sim{0};
  bool simulated = false;  // set before any stage starts
};

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), 1, ',');
  return v < 0 ? "-" + s : s;
}

}  // namespace

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

/// Registers the CarTelemetry schema generated from `c` under `subject`. The subject's compatibility rule
/// (BACKWARD unless the operator chose another) decides whether this catalog version may join those already
/// written: a refusal is a ConfigError naming the catalog and each incompatible field, before this process
/// writes anything.
int32_t register_telemetry_schema(registry::SchemaRegistryClient& client, const std::string& subject,
                                  const std::shared_ptr<const catalog::Catalog>& c) {
  try {
    return client.register_schema(subject, codec::TelemetryAvro(c).schema());
  } catch (const registry::SchemaRegistryError& e) {
    if (e.status() != 409) throw;
    // The embedded registry lists its problems after "(LEVEL): ", each naming "CarTelemetry.FIELD".
    std::string what = e.message();
    if (const auto at = what.find("): "); at != std::string::npos) what.erase(0, at + 3);
    for (auto at = what.find("CarTelemetry."); at != std::string::npos; at = what.find("CarTelemetry.", at))
      what.replace(at, std::string_view("CarTelemetry.").size(), "field ");
    throw ConfigError("catalog " + c->label() +
                      " is not compatible with the CarTelemetry schema already registered under " + subject +
                      ": " + what);
  }
}

}  // namespace

namespace {

/// One run of `run_pipeline`, phase by phase: each method is one step of DESIGN.md's loop around the stages,
/// and the members are what one phase hands to the next. Main thread only.
class PipelineRun {
 public:
  PipelineRun(const Config& config, const RunControl& control, const Roles& roles)
      : _config(config),
        _control(control),
        _roles(roles),
        _distributed(!config.get(keys::kafka_brokers).empty()) {}

  RunSummary run() {
    check_roles_and_dirs();
    start_schema_registry();
    register_schemas();  // first: a catalog the registry refuses stops the run before anything is written
    open_log();
    resume();
    build_stages();
    wait_for_published_model();
    start();
    watch();
    drain();
    return summarize();
  }

 private:
  bool stop_requested(int at_least = 1) const {
    return _control.stop_signals && _control.stop_signals->load() >= at_least;
  }

  /// The roles make sense for the log, and the data dir exists where something is kept in it.
  void check_roles_and_dirs() {
    if (!_distributed && !_roles.everything)
      throw ConfigError(
          "a single role needs --kafka BROKERS; to run everything in one process use `fleettwin up`");
    _data_dir = _config.get(keys::data_dir);
    std::error_code ec;
    if (_roles.runs("sink") || _roles.sim || !_distributed) fs::create_directories(_data_dir, ec);
    if (ec) throw ConfigError("data_dir " + _data_dir.string() + ": " + ec.message());
    _ground_truth = _config.get(keys::ground_truth);
    if (_ground_truth.empty()) _ground_truth = (_data_dir / "ground_truth.jsonl").string();
    _replay = _config.get(keys::sim_replay);
    if (!_replay.empty() && !fs::exists(_replay)) throw ConfigError("--replay: no such file " + _replay);
    _ctx.catalog = configured_catalog(_config);
  }

  /// The embedded log, or Kafka, with every topic of DESIGN.md §4.
  void open_log() {
    const log::TopicConfig topics = topic_config(_config);
    if (_distributed) {
      auto settings = kafka_settings(_config, _config.get(keys::kafka_brokers));
      // Copies of the twin, sink and aggregate roles must each get a share of every input topic (the same
      // partition numbers where counts are equal): the range assignor, unless the operator chose one
      // (Roles::co_partitioned; docs/architecture.md, "State across restarts and rebalances").
      if (_roles.co_partitioned()) settings.emplace("partition.assignment.strategy", "range");
      // --sites subscribes by regex: a site that starts replicating later is found at the next metadata
      // refresh (librdkafka's default is 5 minutes).
      if (_config.get(keys::sites)) settings.emplace("topic.metadata.refresh.interval.ms", "5000");
      _log = std::make_unique<log::KafkaLog>(std::move(settings));
      spdlog::info("log: Kafka at {}", _config.get(keys::kafka_brokers));
    } else {
      _log = std::make_unique<log::MemoryLog>(topics);
    }
    for (const char* t :
         {core::topics::kTelemetryRaw, core::topics::kTelemetry, core::topics::kTelemetryDlq,
          core::topics::kScores, core::topics::kAlerts, core::topics::kCommands, core::topics::kCommandAcks})
      _log->create_topic(t, topics);
    // Every stage's DLQ, the bridge's included (kDlqTopics).
    for (const char* t : core::topics::kDlqTopics) _log->create_topic(t, topics);
    log::TopicConfig compacted = topics;
    compacted.compacted = true;
    // Changelogs keep the latest record per key: the twin of every car, the newest model artifact.
    for (const char* t : {core::topics::kTwins, core::topics::kModels}) _log->create_topic(t, compacted);
    create_aggregate_topics(*_log, runs_aggregate() && !_roles.everything ? _config.get(keys::group) : "",
                            compacted, _ctx.aggregate);
    // Window results: one key per window, a later revision replacing an earlier one, but the sink needs
    // every record (it keeps the highest revision), so the topic is not compacted.
    _log->create_topic(core::topics::kAggregates, topics);
  }

  /// Whether this process runs the aggregate stage: its role, or `up` unless aggregate.enabled is off.
  bool runs_aggregate() const {
    return _roles.runs("aggregate") && (!_roles.everything || _config.get(keys::aggregate_enabled));
  }

  /// The registry the Avro writers register with: the configured one, or one embedded here when this process
  /// runs everything. Records always carry ids a registry gave out.
  void start_schema_registry() {
    _registry_url = _config.get(keys::schema_registry);
    _registry_client.token = _config.get(keys::registry_token);
    if (!_registry_url.empty() || !_roles.runs("process")) return;
    if (!_roles.everything)
      throw ConfigError(
          "the process role writes Avro: give it --schema-registry URL (e.g. of `fleettwin registry`)");
    const auto [host, port] = parse_host_port(_config.get(keys::registry_listen), "--registry-listen");
    registry::EmbeddedRegistryOptions ro;
    ro.host = host;
    ro.port = port;
    std::error_code ec;
    fs::create_directories(_data_dir / "registry", ec);
    ro.journal_path = (_data_dir / "registry" / "schemas.jsonl").string();
    ro.tokens = configured_tokens(_config, keys::registry_tokens);
    if (!ro.tokens.empty() && _registry_client.token.empty()) {
      // This process registers its own schemas: a token of its own, valid while it runs.
      _registry_client.token = api::random_token();
      ro.tokens.add(core::Role::kOperator, _registry_client.token);
    }
    _embedded_registry = std::make_unique<registry::EmbeddedRegistry>(ro);
    try {
      _embedded_registry->start();
    } catch (const std::exception& e) {
      throw ConfigError(
          "schema registry: cannot listen on " + _config.get(keys::registry_listen) + " (" + e.what() +
          "); pass --registry-listen HOST:PORT (port 0 picks a free one) or --schema-registry URL");
    }
    _registry_url = _embedded_registry->url();
    spdlog::info("schema registry: embedded at {}", _registry_url);
  }

  /// CarTelemetry of the catalog (process), AnomalyScore and Alert (score) under their topics' subjects.
  void register_schemas() {
    if (_roles.runs("process")) {
      registry::SchemaRegistryClient client(_registry_url, _registry_client);
      const auto subject = registry::subject_for_topic(core::topics::kTelemetry);
      _ctx.process.telemetry_schema_id = register_telemetry_schema(client, subject, _ctx.catalog);
      spdlog::info("schema: {} registered as id {} (catalog {})", subject, _ctx.process.telemetry_schema_id,
                   _ctx.catalog->label());
    }
    if (_roles.runs("score")) {
      if (_registry_url.empty())
        throw ConfigError(
            "the score role writes Avro: give it --schema-registry URL (e.g. of `fleettwin registry`)");
      registry::SchemaRegistryClient client(_registry_url, _registry_client);
      _ctx.score.score_schema_id = client.register_schema(registry::subject_for_topic(core::topics::kScores),
                                                          codec::anomaly_score_schema());
      _ctx.score.alert_schema_id =
          client.register_schema(registry::subject_for_topic(core::topics::kAlerts), codec::alert_schema());
    }
    if (runs_aggregate()) {
      if (_registry_url.empty())
        throw ConfigError(
            "the aggregate role writes Avro: give it --schema-registry URL (e.g. of `fleettwin registry`)");
      registry::SchemaRegistryClient client(_registry_url, _registry_client);
      _ctx.aggregate.result_schema_id = client.register_schema(
          registry::subject_for_topic(core::topics::kAggregates), codec::aggregate_result_schema());
    }
    // Readers resolve each record's writer schema by id when a registry is known (roles take
    // --schema-registry).
    if (!_registry_url.empty())
      _ctx.registry = std::make_shared<registry::SchemaRegistryClient>(_registry_url, _registry_client);
  }

  /// Where this run continues: the last stored seq of every car (the simulator goes on after it) and the
  /// twins.
  void resume() {
    if (_roles.runs("sink") || _roles.sim)
      _control_store = store_opener(_config, nullptr, _ctx.catalog)();  // SQLite, or MongoDB
    std::vector<std::pair<std::string, int64_t>> resume;
    if (_roles.sim && _replay.empty()) resume = _control_store->max_seq_per_car();
    if (_roles.runs("twin")) link_twin_stage();
    if (runs_aggregate() && _distributed) {
      // Kafka outlives this process: the aggregate stage keeps its windows on a changelog and a copy that
      // gains partitions loads them. The embedded log does not (docs/architecture.md "Windows over time").
      _ctx.aggregate.changelog = true;
      _ctx.aggregate.sites = _config.get(keys::sites);
      _ctx.aggregate_links = changelog_aggregate_links(*_log, _ctx.aggregate);
    } else if (runs_aggregate()) {
      // The embedded log dies with the process: the data dir's state table and the store take its place.
      _ctx.aggregate_links =
          embedded_aggregate_links(*_log, _data_dir.string(), store_opener(_config, nullptr, _ctx.catalog));
    }
    if (!resume.empty())
      spdlog::info("resuming on {}: {} cars already stored, {} twins", _data_dir.string(), resume.size(),
                   _ctx.initial_twins.size());
    _start_ms = core::wall_clock_ms() / 1000 * 1000;
    if (_roles.sim) configure_simulator(std::move(resume));
    // The simulator on the log moves this clock (faster than real time with --fast); anything else (a role
    // without it, cars over MQTT) follows wall time.
    _clock.simulated = _roles.sim && !(_roles.everything && !_config.get(keys::mqtt_brokers).empty());
    _clock.sim.advance_to(_start_ms);
  }

  /// Where the twin stage resumes (embedded: the store's twins; distributed: fleet.twins, read for the
  /// partitions its group gives it) and how it sees its upstream: the process stage's group on the raw topic,
  /// in this process or another, caught up or not (liveness, docs/architecture.md).
  void link_twin_stage() {
    if (_distributed) {
      _ctx.twin_links.load = [log = _log.get(), catalog = _ctx.catalog](const std::set<int32_t>& partitions) {
        return stages::read_twin_changelog(*log, *catalog, &partitions);
      };
    } else {
      _ctx.initial_twins = stages::twins_from_store(*_control_store);
    }
    _ctx.twin_links.upstream_caught_up = [log = _log.get()] {
      return log::group_lag(*log, "fleettwin.process", core::topics::kTelemetryRaw) == 0;
    };
  }

  void configure_simulator(std::vector<std::pair<std::string, int64_t>> resume) {
    auto& fleet = _sim.fleet;
    fleet.cars = static_cast<std::size_t>(_config.get(keys::sim_cars));
    fleet.id_prefix = _config.get(keys::sim_id_prefix);
    fleet.interval_ms = _config.get(keys::sim_interval).count();
    fleet.seed = static_cast<uint64_t>(_config.get(keys::sim_seed));
    fleet.failure_rate = _config.get(keys::sim_failure_rate);
    fleet.ramp_ms = _config.get(keys::sim_failure_ramp).count();
    const SimState state = load_or_create_sim_state(
        _data_dir / "sim.state",
        // Whole seconds: a simulated fleet starts on a round time, which keeps ts readable.
        SimState{static_cast<int64_t>(fleet.cars), static_cast<int64_t>(fleet.seed), fleet.interval_ms,
                 _start_ms});
    _start_ms = state.start_ms;
    fleet.start_ms = state.start_ms;
    fleet.duration_ms = _config.get(keys::sim_duration).count();
    apply_sim_catalog(_config, fleet);
    if (const auto problem = sim::validate(fleet); !problem.empty()) throw ConfigError(problem);
    _sim.fast = _config.get(keys::sim_fast);
    _sim.replay_csv = _replay;
    _sim.inject_invalid = _config.get(keys::sim_inject_invalid);
    _sim.ground_truth_path = _ground_truth;
    _sim.resume = std::move(resume);
  }

  /// A runner for every stage of the registry this process runs, each configured from its own keys.
  void build_stages() {
    _ctx.open_store = store_opener(_config, &_metrics, _ctx.catalog);
    _ctx.models = std::make_shared<stages::ModelSlot>();
    _ctx.single_role = !_roles.everything;
    stages::RunnerOptions ro;
    ro.max_batch = static_cast<std::size_t>(_config.get(keys::stage_max_batch));
    ro.batch_window = _config.get(keys::stage_batch_window);
    const std::string group = _config.get(keys::group);
    if (!group.empty() && !_roles.everything) ro.group = group;  // one stage here: the group is its own
    ro.sites = _distributed && _config.get(keys::sites);
    for (const auto& entry : stages::registry()) {
      if (!_roles.runs(entry.descriptor().name)) continue;
      if (entry.descriptor().name == "aggregate" && !runs_aggregate()) continue;
      entry.configure(_config, _ctx);
      // The first model: trained by the score stage after the warm-up, unless one arrives on fleet.models.
      if (entry.descriptor().name == "score" && _ctx.score.warmup_ms > 0)
        _ctx.score_trainer = warmup_trainer(_config);
      if (entry.descriptor().name == "trainer") {
        _ctx.candidate_trainer = candidate_trainer(_config);
        _ctx.train_models = std::make_shared<stages::ModelSlot>();
      }
      _runners.push_back(std::make_unique<stages::StageRunner>(entry.make(_ctx), *_log, _metrics, ro));
    }
    // Counted before the sink starts writing: rows it stores must not count as "before", and on FerretDB this
    // count is a scan of the whole collection inside one SQLite read transaction. Run while the sink writes
    // (a restarted sink catching up), that reader keeps the WAL from being checkpointed: the WAL grew to ~1
    // GB within a minute, every request slowed down, and the first commit after the scan stalled in a
    // checkpoint of the whole WAL (the kill -9 test's "hung" restart).
    _stored_before = _control_store && _roles.runs("sink") ? _control_store->history_stats().rows : 0;
    open_uplink(ro);
  }

  /// `--uplink`: the capture stage runs last (it reads every stage's output), after the store's telemetry the
  /// spool missed before a kill is spooled.
  void open_uplink(const stages::RunnerOptions& ro) {
    _uplink = Uplink::open(_config,
                           UplinkHost{_log.get(), &_metrics, _ctx.registry, _ctx.catalog, _data_dir.string()},
                           !_distributed && _roles.everything);
    if (!_uplink) return;
    _uplink->catch_up_from_store(*_control_store, _ctx.process.telemetry_schema_id);
    _runners.push_back(std::make_unique<stages::StageRunner>(_uplink->capture_stage(), *_log, _metrics, ro));
  }

  /// Models published on fleet.models (by `fleettwin train`, or by a score stage) reach the score stage
  /// through the watcher while it runs. One already published is loaded before the stage reads its first
  /// event: else the first batches would go unscored, and could even start a warm-up training that replaces
  /// the operator's model on fleet.models.
  void wait_for_published_model() {
    if (_ctx.train_models) {
      // The trainer's own view of the active model (the parent of its candidates, the reference of their
      // trials): its stage input commits fleet.models offsets, and so would not read it again on a restart.
      _trainer_watcher = std::make_unique<stages::ModelWatcher>(
          *_log, _ctx.train_models,
          [space = _ctx.train.space](std::string_view bytes) { return ml::decode_artifact(bytes, space); },
          _trainer_watcher_metrics);
      _trainer_watcher->start();
    }
    if (!_roles.runs("score")) return;
    _model_watcher = std::make_unique<stages::ModelWatcher>(
        *_log, _ctx.models,
        [space = _ctx.score.space](std::string_view bytes) { return ml::decode_artifact(bytes, space); },
        _metrics);
    _model_watcher->start();
    int64_t published_models = 0;
    for (const auto end : _log->end_offsets(core::topics::kModels)) published_models += end;
    auto read_one = [&] {
      return _metrics.value(core::metric::kModelsLoaded) + _metrics.value(core::metric::kModelsRejected) > 0;
    };
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (published_models > 0 && !read_one() && Clock::now() < until && !stop_requested())
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (published_models > 0 && !read_one())
      spdlog::warn("score: no model read from {} within 60 s; scoring starts without one",
                   core::topics::kModels);
  }

  /// The stages, the API of `up`, and what feeds the log: the simulator, or cars over MQTT (`up --mqtt`).
  void start() {
    for (auto& r : _runners) r->start();
    // The REST API and dashboard of `up` (a distributed deployment runs `fleettwin api` on its own).
    if (_roles.everything && !_config.get(keys::http_listen).empty())
      _api_server = start_api_server(
          _config, ApiHost{&_metrics, _log.get(), _ctx.open_store, _data_dir.string(), {}, _ctx.catalog});
    // A role on its own (distributed mode) serves its metrics and probes here; `up` may too.
    _metrics_server = start_metrics_server(_config, _metrics);
    _mqtt_mode = _roles.everything && !_config.get(keys::mqtt_brokers).empty();
    if (_mqtt_mode) {
      if (_sim.fast) throw ConfigError("--mqtt runs the cars in real time over the network; drop --fast");
      if (!_replay.empty()) throw ConfigError("--mqtt simulates cars; --replay is not supported with it");
      if (_roles.sim)
        _mqtt_front.start(_config, _sim.fleet, _sim.ground_truth_path, *_log, _metrics, _clock, _published,
                          (_data_dir / "mqtt").string());
      else  // real cars: an edge site
        _mqtt_front.start_bridge(_config, *_log, _metrics, _clock, (_data_dir / "mqtt").string());
    }
    if (_roles.sim && !_mqtt_mode)
      _source = std::make_unique<sim::SimSource>(_sim, *_log, &_clock.sim, _metrics);
    _started = Clock::now();
    _last_tick = _started;
    _next_progress = _started + std::chrono::seconds(1);
    _stored_rate.start(_started, _stored.value());
    if (_source) _source->start();
    if (_uplink) _uplink->start();
  }

  /// The live progress line: the rate of what this process does first (publishing with the simulator, else
  /// reading its input), then what each role has done.
  void print_progress(bool final_line) {
    const auto now = Clock::now();
    const double secs = std::chrono::duration<double>(now - _last_tick).count();
    int64_t count = _roles.sim ? _published.value() : 0;
    if (!_roles.sim)
      for (auto& r : _runners) count = std::max(count, r->records_in());
    const auto rate = static_cast<int64_t>(secs > 0 ? static_cast<double>(count - _last_count) / secs : 0);
    _last_count = count;
    _last_tick = now;
    int64_t lag = 0;
    bool assigned = false;  // before a role's group gives it partitions its lag is no figure at all
    bool retrying = false;  // a commit the broker did not take, tried again after a backoff
    for (auto& r : _runners) {
      lag += r->lag();
      assigned = assigned || r->has_partitions();
      retrying = retrying || r->commit_retrying();
    }
    const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - _started).count();
    std::string line = "[" + std::to_string(elapsed) + "s] ";
    if (_roles.runs("twin")) line += "cars online " + with_commas(_online.value()) + " | ";
    line += with_commas(rate) + " msg/s";
    if (_roles.sim) line += " | published " + with_commas(_published.value());
    if (_roles.runs("process"))
      line += " | processed " + with_commas(_processed.value()) + " | DLQ " +
              with_commas(_metrics.sum(core::metric::kDlq));
    if (_roles.runs("sink")) line += " | stored " + with_commas(_stored.value());
    if (_uplink) line += _uplink->progress();
    if (!_runners.empty()) line += assigned ? " | lag " + with_commas(lag) : " | waiting for partitions";
    if (retrying) line += " | commit retrying";
    static const bool kTty = isatty(STDERR_FILENO);
    std::fprintf(stderr, "%s%s%s", kTty ? "\r\033[K" : "", line.c_str(), (kTty && !final_line) ? "" : "\n");
    std::fflush(stderr);
  }

  void progress_tick() {
    if (_control.progress && Clock::now() >= _next_progress) {
      print_progress(false);
      _next_progress += std::chrono::seconds(1);
    }
  }

  /// Without the simulator (`stop_when_caught_up`): true once every input stayed consumed for a second.
  bool caught_up() {
    int64_t in = 0, lag = 0;
    for (auto& r : _runners) {
      in += r->records_in();
      lag += r->lag();
    }
    if (in != _idle_in || lag != 0) {
      _idle_in = in;
      _idle_since = Clock::now();
      return false;
    }
    return in > 0 && Clock::now() - _idle_since > std::chrono::seconds(1);
  }

  /// Main thread: watch and report until a stop signal, the wall limit, the end of the simulation, the
  /// inputs caught up (when asked) or a failed stage; then stop what feeds the log.
  void watch() {
    auto feeding = [&] { return _mqtt_mode ? _mqtt_front.running() : _source ? _source->running() : true; };
    _idle_since = Clock::now();
    while (feeding()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (_control.stop_when_caught_up && !_source && caught_up()) break;
      if (stop_requested()) break;
      if (_control.max_wall_ms > 0 &&
          Clock::now() - _started >= std::chrono::milliseconds(_control.max_wall_ms))
        break;
      bool stage_failed = false;
      for (auto& r : _runners) stage_failed |= !r->running();
      if (stage_failed) {
        _failed = true;
        break;
      }
      progress_tick();
      _stored_rate.sample(Clock::now(), _stored.value());
    }
    if (_source) {
      _source->request_stop();
      _source->join();
      if (!_source->error().empty()) _failed = true;
    }
    if (_mqtt_mode && !_mqtt_front.stop()) _failed = true;
  }

  /// Drain in pipeline order: each stage finishes its input once everything upstream has stopped writing. A
  /// role process on its own (no upstream here) stops after its current batch instead: others may still be
  /// writing, and its group takes over where it committed.
  void drain() {
    for (auto& r : _runners) {
      // `up` without the simulator (real cars) drains too: the bridge has stopped writing.
      if (_failed || stop_requested(2) || !(_roles.sim || _roles.everything)) {
        _hard_stop = _roles.sim;
        r->request_stop();
      } else {
        r->request_drain();
      }
      while (r->running()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (stop_requested(2)) r->request_stop();
        progress_tick();
      }
      r->join();
    }
    save_aggregate_windows();
    // A drained run hands central what it spooled, while central takes it; the rest waits for the next run.
    if (_uplink) _uplink->stop(_hard_stop || _failed ? std::chrono::seconds(0) : std::chrono::seconds(30));
    if (_control.progress) print_progress(true);
  }

  /// Embedded: a stop is the aggregate stage's last flush. Its runner wrote every result before it stopped;
  /// the sink, which drains after it, has stored them since, so the state is saved now (after a hard stop
  /// only what the store caught up with, and after a failed stage only what earlier flushes took; the next
  /// run replays the rest from the store).
  void save_aggregate_windows() {
    if (_distributed) return;
    for (auto& r : _runners) {
      if (r->stage().descriptor().name != "aggregate") continue;
      auto& stage = static_cast<stages::AggregateStage&>(r->stage());
      if (r->error().empty())
        stage.final_flush();
      else
        stage.save_flushed_state();
    }
  }

  /// The counts, the exactness check against what the simulator published, and the rates; throws when a
  /// stage or the feed failed.
  RunSummary summarize() {
    const double elapsed = std::chrono::duration<double>(Clock::now() - _started).count();
    RunSummary s;
    s.simulated = _roles.sim;
    s.cars = _roles.sim ? static_cast<int64_t>(_sim.fleet.cars) : 0;
    s.published = _published.value();
    s.injected_invalid = _metrics.value(core::metric::kSimInjectedInvalid);
    s.processed = _processed.value();
    for (auto& r : _runners) s.records_in += r->records_in();
    s.valid = _metrics.value(core::metric::kTelemetryValid);
    s.twin_writes = _metrics.value(core::metric::kTwinWrites);
    s.dlq = _dlq.value();
    s.failures = _metrics.value(core::metric::kSimFailures);
    for (auto& r : _runners)
      if (!r->error().empty()) s.clean = false;
    if (_source && !_source->error().empty()) s.clean = false;
    if (_mqtt_mode && !_mqtt_front.error().empty()) s.clean = false;
    s.elapsed_s = elapsed;
    s.p50_latency_ms = static_cast<double>(_latency.quantile_us(0.50)) / 1000.0;
    s.p99_latency_ms = static_cast<double>(_latency.quantile_us(0.99)) / 1000.0;
    if (_roles.runs("sink")) {
      check_store(s);
      s.msgs_per_s = elapsed > 0 ? static_cast<double>(s.stored_this_run) / elapsed : 0;
    } else {
      // What this process did: published with the simulator, else read by its stages (a score or twin role
      // processes nothing itself).
      s.msgs_per_s = elapsed > 0 ? static_cast<double>(_roles.sim ? s.published : s.records_in) / elapsed : 0;
    }
    s.peak_rss_mb = core::peak_rss_mb();
    s.fed_seconds = static_cast<int64_t>(_stored_rate.seconds().size());
    s.fed_msgs_per_s = _stored_rate.mean();
    s.min_msgs_per_s = _stored_rate.slowest();
    s.zero_seconds = _stored_rate.seconds_at_zero();
    s.scored = _metrics.value(core::metric::kScoreScored);
    s.unscored = _metrics.value(core::metric::kScoreUnscored);
    s.score_skipped = _metrics.value(core::metric::kRecordsSkipped, core::metric::stage_label("score"));
    if (_hard_stop && !_failed)
      spdlog::warn("stopped without draining: the next run on this data dir resumes");
    if (_failed) {
      std::string why = _source ? _source->error() : _mqtt_front.error();
      for (auto& r : _runners)
        if (!r->error().empty())
          why += (why.empty() ? "" : "; ") + r->stage().descriptor().name + ": " + r->error();
      throw std::runtime_error("pipeline failed: " + why);
    }
    if (_embedded_registry) _embedded_registry->stop();
    return s;
  }

  std::vector<const stages::SinkStage*> sinks() {
    std::vector<const stages::SinkStage*> out;
    for (const auto& r : _runners)
      if (const auto* sink = dynamic_cast<const stages::SinkStage*>(&r->stage())) out.push_back(sink);
    return out;
  }
  /// History rows retention removed during this run (-1: it dropped partitions, rows not counted).
  int64_t retention_rows_removed() {
    int64_t removed = 0;
    for (const auto* sink : sinks()) {
      if (sink->retention_rows_removed() < 0) return -1;
      removed += sink->retention_rows_removed();
    }
    return removed;
  }
  /// Seqs that history retention removed, car by car: a car whose oldest stored seq m is above 1 had seqs
  /// 1..m-1 removed when seq m-1 was older than the sink's last cutoff. The simulator sends a car's seqs at
  /// least one interval apart, so seq m-1 was sent at ts(m) - interval or before; when that is not before
  /// the cutoff nothing proves they were removed and they count as lost. 0 when retention removed nothing.
  int64_t retention_removed() {
    int64_t cutoff = INT64_MIN;
    for (const auto* sink : sinks()) cutoff = std::max(cutoff, sink->retention_cutoff());
    if (cutoff == INT64_MIN) return 0;
    const int64_t interval = _config.get(keys::sim_interval).count();
    int64_t removed = 0;
    for (const auto& row : _control_store->oldest_per_car())
      if (row.seq > 1 && row.ts - interval < cutoff) removed += row.seq - 1;
    return removed;
  }

  /// The store's side of the summary: what it holds, and the exactness check, (car, seq) by (car, seq).
  void check_store(RunSummary& s) {
    const auto stats = _control_store->history_stats();
    s.stored_telemetry = stats.rows;
    s.stored_this_run = stats.rows - _stored_before;
    s.twins = stats.twins;
    s.duplicates = stats.rows - stats.distinct;
    if (_mqtt_mode && _roles.sim && _config.get(keys::mqtt_qos) == 1) {
      // Every QoS 1 message the cars published was acknowledged by a broker and then by the bridge.
      const int64_t removed = retention_rows_removed();
      if (removed < 0)
        spdlog::warn("retention dropped whole day partitions during the run: `lost` counts their rows too");
      s.lost = std::max<int64_t>(0, s.published - s.stored_this_run - std::max<int64_t>(0, removed));
    }
    if (!_source) return;
    const auto expected = _source->expected_last_seq();
    int64_t expected_total = 0;
    for (const auto& [car, seq] : expected) expected_total += seq;
    int64_t beyond = 0;  // stored seqs the simulator never published (must be 0)
    for (const auto& [car, seq] : _control_store->max_seq_per_car()) {
      auto it = expected.find(car);
      const int64_t exp = it == expected.end() ? 0 : it->second;
      if (seq > exp) beyond += seq - exp;
    }
    if (_replay.empty())
      s.lost = std::max<int64_t>(0, expected_total - retention_removed() - (stats.distinct - beyond));
    for (const auto& twin : load_twins(*_control_store)) {
      auto it = expected.find(twin.id);
      if (it != expected.end() && twin.reported.seq != it->second) ++s.twins_behind;
    }
  }

  const Config& _config;
  const RunControl& _control;
  const Roles& _roles;
  const bool _distributed;
  fs::path _data_dir;
  std::string _ground_truth;
  std::string _replay;

  core::Metrics _metrics;
  core::Histogram _latency;
  std::unique_ptr<log::Log> _log;
  std::unique_ptr<registry::EmbeddedRegistry> _embedded_registry;
  std::string _registry_url;
  registry::SchemaRegistryClientOptions _registry_client;  // its token (registry.token)
  std::unique_ptr<store::TwinStore> _control_store;        // resume point and the end-of-run check
  int64_t _stored_before = 0;
  int64_t _start_ms = 0;
  RunClock _clock;  // set by resume()
  sim::SimSourceOptions _sim;
  stages::StageContext _ctx{_metrics, _clock, _latency, {}};
  std::vector<std::unique_ptr<stages::StageRunner>> _runners;
  std::unique_ptr<stages::ModelWatcher> _model_watcher;
  core::Metrics _trainer_watcher_metrics;  ///< apart: the score stage's model counters mean its models
  std::unique_ptr<stages::ModelWatcher> _trainer_watcher;
  std::unique_ptr<api::ApiServer> _api_server;
  std::unique_ptr<api::MetricsServer> _metrics_server;
  MqttFront _mqtt_front;
  bool _mqtt_mode = false;
  std::unique_ptr<sim::SimSource> _source;
  std::unique_ptr<Uplink> _uplink;

  // What the progress line and the summary read.
  core::Counter& _published = _metrics.counter(core::metric::kSimPublished);
  core::Counter& _stored = _metrics.counter(core::metric::kTelemetryStored);
  core::Counter& _dlq = _metrics.counter(core::metric::kDlq, core::metric::stage_label("process"));
  core::Gauge& _online = _metrics.gauge(core::metric::kCarsOnline);
  core::Counter& _processed =
      _metrics.counter(core::metric::kRecordsIn, core::metric::stage_label("process"));
  RateSampler _stored_rate;  // stored per second while fed (summary)

  Clock::time_point _started, _last_tick, _next_progress, _idle_since;
  int64_t _last_count = 0;
  int64_t _idle_in = -1;
  bool _failed = false;
  bool _hard_stop = false;
};

}  // namespace

RunSummary run_pipeline(const Config& config, const RunControl& control, const Roles& roles) {
  return PipelineRun(config, control, roles).run();
}

}  // namespace fleettwin::app
