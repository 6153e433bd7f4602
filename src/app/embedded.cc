#include "app/embedded.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/sim_source.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/registry.h"
#include "store/sqlite/sqlite_store.h"

namespace fleettwin::app {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

std::string RunSummary::to_json() const {
  std::ostringstream o;
  o << "{\"cars\":" << cars << ",\"published\":" << published << ",\"injected_invalid\":" << injected_invalid
    << ",\"processed\":" << processed << ",\"valid\":" << valid << ",\"dlq\":" << dlq
    << ",\"stored_telemetry\":" << stored_telemetry << ",\"stored_this_run\":" << stored_this_run
    << ",\"twins\":" << twins << ",\"twins_behind\":" << twins_behind << ",\"lost\":" << lost
    << ",\"duplicates\":" << duplicates << ",\"failures\":" << failures << ",\"elapsed_s\":" << elapsed_s
    << ",\"msgs_per_s\":" << msgs_per_s << ",\"p50_latency_ms\":" << p50_latency_ms
    << ",\"p99_latency_ms\":" << p99_latency_ms << ",\"peak_rss_mb\":" << peak_rss_mb
    << ",\"clean\":" << (clean ? "true" : "false") << "}";
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

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return v < 0 ? "-" + s : s;
}

}  // namespace

RunSummary run_embedded(const Config& config, const RunControl& control) {
  const fs::path data_dir = config.get_string("data_dir");
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) throw ConfigError("data_dir " + data_dir.string() + ": " + ec.message());
  const std::string db_path = (data_dir / "fleettwin.db").string();
  std::string ground_truth = config.get_string("ground_truth");
  if (ground_truth.empty()) ground_truth = (data_dir / "ground_truth.jsonl").string();

  const bool fast = config.get_bool("sim.fast");
  const std::string replay = config.get_string("sim.replay");
  if (!replay.empty() && !fs::exists(replay)) throw ConfigError("--replay: no such file " + replay);

  // Resume point: what the store already holds.
  auto control_store = std::make_unique<store::SqliteStore>(db_path);
  const auto resume =
      replay.empty() ? control_store->max_seq_per_car() : decltype(control_store->max_seq_per_car()){};
  std::vector<core::Twin> twins;
  for (store::TwinQuery q{.limit = 10000};;) {
    auto page = control_store->list_twins(q);
    if (page.empty()) break;
    q.after_id = page.back().id;
    twins.insert(twins.end(), std::make_move_iterator(page.begin()), std::make_move_iterator(page.end()));
  }
  if (!resume.empty())
    spdlog::info("resuming on {}: {} cars, {} twins already stored", data_dir.string(), resume.size(),
                 twins.size());

  SimSourceOptions so;
  so.fleet.cars = static_cast<std::size_t>(config.get_int("sim.cars"));
  so.fleet.interval_ms = config.get_duration_ms("sim.interval");
  so.fleet.seed = static_cast<uint64_t>(config.get_int("sim.seed"));
  so.fleet.failure_rate = config.get_double("sim.failure_rate");
  so.fleet.ramp_ms = config.get_duration_ms("sim.failure_ramp");
  const SimState state = load_or_create_sim_state(
      data_dir / "sim.state",
      SimState{static_cast<int64_t>(so.fleet.cars), static_cast<int64_t>(so.fleet.seed), so.fleet.interval_ms,
               // Whole seconds: a simulated fleet starts on a round time, which keeps ids and ts readable.
               wall_ms() / 1000 * 1000});
  so.fleet.start_ms = state.start_ms;
  so.fleet.duration_ms = config.get_duration_ms("sim.duration");
  if (const auto problem = sim::validate(so.fleet); !problem.empty()) throw ConfigError(problem);
  so.fast = fast;
  so.replay_csv = replay;
  so.inject_invalid = config.get_int("sim.inject_invalid");
  so.ground_truth_path = ground_truth;
  so.resume = resume;

  core::Metrics metrics;
  core::Histogram latency;
  core::SimClock clock(state.start_ms);
  log::TopicConfig topic_config;
  topic_config.partitions = static_cast<int32_t>(config.get_int("log.partitions"));
  topic_config.capacity = config.get_int("log.capacity");
  log::MemoryLog log(topic_config);
  for (const char* t : {core::topics::kTelemetryRaw, core::topics::kTelemetry, core::topics::kTelemetryDlq})
    log.create_topic(t, topic_config);
  log::TopicConfig compacted = topic_config;
  compacted.compacted = true;
  log.create_topic(core::topics::kTwins, compacted);

  stages::StageContext ctx{metrics, clock, latency,
                           [&] { return std::make_unique<store::SqliteStore>(db_path); }};
  ctx.process.max_payload_bytes = static_cast<std::size_t>(config.get_int("codec.max_payload_bytes"));
  ctx.twin.offline_after_ms = config.get_duration_ms("twin.offline_after");
  ctx.twin.flush_interval_ms = config.get_duration_ms("twin.flush_interval");
  ctx.initial_twins = std::move(twins);
  stages::RunnerOptions ro;
  ro.max_batch = static_cast<std::size_t>(config.get_int("stage.max_batch"));
  ro.batch_window = std::chrono::milliseconds(config.get_duration_ms("stage.batch_window"));

  std::vector<std::unique_ptr<stages::StageRunner>> runners;
  for (const auto& entry : stages::registry())
    runners.push_back(std::make_unique<stages::StageRunner>(entry.make(ctx), log, metrics, ro));
  for (auto& r : runners) r->start();

  SimSource source(so, log, &clock, metrics);
  const auto started = Clock::now();
  const int64_t stored_before = control_store->history_stats().rows;
  source.start();

  auto& stored = metrics.counter("fleettwin_telemetry_stored_total", "");
  auto& dlq = metrics.counter("fleettwin_dlq_total", "", "stage=\"process\"");
  auto& online = metrics.gauge("fleettwin_cars_online", "");
  const bool tty = isatty(STDERR_FILENO);
  int64_t last_published = 0;
  auto last_tick = started;
  bool hard_stop = false;
  bool failed = false;
  auto print_progress = [&](bool final_line) {
    const auto now = Clock::now();
    const double secs = std::chrono::duration<double>(now - last_tick).count();
    const int64_t pub = source.published();
    const auto rate = static_cast<int64_t>(secs > 0 ? static_cast<double>(pub - last_published) / secs : 0);
    last_published = pub;
    last_tick = now;
    int64_t lag = 0;
    for (auto& r : runners) lag += r->lag();
    const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
    std::fprintf(
        stderr, "%s[%5llds] cars online %s | %s msg/s | published %s | stored %s | DLQ %s | lag %s%s",
        tty ? "\r\033[K" : "", static_cast<long long>(elapsed), with_commas(online.value()).c_str(),
        with_commas(rate).c_str(), with_commas(pub).c_str(), with_commas(stored.value()).c_str(),
        with_commas(dlq.value()).c_str(), with_commas(lag).c_str(), (tty && !final_line) ? "" : "\n");
    std::fflush(stderr);
  };

  // Main thread: watch, report, and stop on signal, wall limit, end of simulation or a failed stage.
  auto next_progress = started + std::chrono::seconds(1);
  while (source.running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
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
  source.request_stop();
  source.join();
  if (!source.error().empty()) failed = true;

  // Drain in pipeline order: each stage finishes its input once everything upstream has stopped writing.
  for (auto& r : runners) {
    if (failed || (control.stop_signals && control.stop_signals->load() > 1)) {
      hard_stop = true;
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
  s.published = source.published();
  s.injected_invalid = source.injected();
  s.processed = metrics.value("fleettwin_records_in_total{stage=\"process\"}");
  s.valid = metrics.value("fleettwin_telemetry_valid_total");
  s.dlq = dlq.value();
  s.failures = metrics.value("fleettwin_sim_failures_total");
  for (auto& r : runners)
    if (!r->error().empty()) s.clean = false;
  if (!source.error().empty()) s.clean = false;

  // The exactness check: the store against what the simulator published, (car, seq) by (car, seq).
  const auto stats = control_store->history_stats();
  s.stored_telemetry = stats.rows;
  s.stored_this_run = stats.rows - stored_before;
  s.twins = stats.twins;
  s.duplicates = stats.rows - stats.distinct;
  const auto expected = source.expected_last_seq();
  int64_t expected_total = 0;
  for (const auto& [car, seq] : expected) expected_total += seq;
  const auto stored_max = control_store->max_seq_per_car();
  int64_t beyond = 0;  // stored seqs the simulator never published (must be 0)
  for (const auto& [car, seq] : stored_max) {
    auto it = expected.find(car);
    const int64_t exp = it == expected.end() ? 0 : it->second;
    if (seq > exp) beyond += seq - exp;
  }
  if (replay.empty()) s.lost = std::max<int64_t>(0, expected_total - (stats.distinct - beyond));
  for (store::TwinQuery q{.limit = 10000};;) {
    auto page = control_store->list_twins(q);
    if (page.empty()) break;
    q.after_id = page.back().id;
    for (const auto& twin : page) {
      auto it = expected.find(twin.id);
      if (it != expected.end() && twin.reported.seq != it->second) ++s.twins_behind;
    }
  }
  s.elapsed_s = elapsed;
  s.msgs_per_s = elapsed > 0 ? static_cast<double>(s.stored_this_run) / elapsed : 0;
  s.p50_latency_ms = static_cast<double>(latency.quantile_us(0.50)) / 1000.0;
  s.p99_latency_ms = static_cast<double>(latency.quantile_us(0.99)) / 1000.0;
  s.peak_rss_mb = peak_rss_mb();
  if (hard_stop && !failed) spdlog::warn("stopped without draining: the next run on this data dir resumes");
  if (failed) {
    std::string why = source.error();
    for (auto& r : runners)
      if (!r->error().empty())
        why += (why.empty() ? "" : "; ") + r->stage().descriptor().name + ": " + r->error();
    throw std::runtime_error("pipeline failed: " + why);
  }
  return s;
}

}  // namespace fleettwin::app
