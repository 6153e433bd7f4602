#include "scenarios/sink_bench.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "app/pipeline.h"
#include "core/process_stats.h"
#include "core/topics.h"
#include "registry/client.h"
#include "registry/telemetry_reader.h"
#include "scenarios/bench_util.h"

namespace fleettwin::cli::sink_bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string placeholder = "@" + key + "@";
    for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at))
      text.replace(at, placeholder.size(), value);
  }
  return text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t sum(const std::vector<int64_t>& v) {
  int64_t n = 0;
  for (auto x : v) n += x;
  return n;
}

std::string with_database(const std::string& uri, const std::string& db) {
  const auto scheme = uri.find("://");
  if (scheme == std::string::npos) throw std::runtime_error("not a URI: " + uri);
  const auto query = uri.find('?', scheme + 3);
  const auto host_end = std::min(uri.find('/', scheme + 3), query);
  const std::string options = query == std::string::npos ? "" : uri.substr(query);
  return uri.substr(0, host_end) + "/" + db + options;
}

namespace {

/// Fields 14 to 17 of /proc/PID/stat (utime, stime, cutime, cstime), in clock ticks; false if it is gone.
bool read_stat_times(pid_t pid, int64_t (&times)[4], pid_t* parent = nullptr) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 17 && rest >> field; ++i) {
    if (i == 4 && parent) *parent = static_cast<pid_t>(std::stoll(field));
    if (i >= 14) times[i - 14] = std::stoll(field);
  }
  return static_cast<bool>(rest);
}

double ticks_to_seconds(int64_t ticks) {
  static const double kTicksPerSecond = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return static_cast<double>(ticks) / kTicksPerSecond;
}

}  // namespace

double proc_cpu_seconds(pid_t pid, bool with_children) {
  int64_t t[4] = {};
  if (!read_stat_times(pid, t)) return -1;
  return ticks_to_seconds(t[0] + t[1] + (with_children ? t[2] + t[3] : 0));
}

pid_t parent_pid(pid_t pid) {
  int64_t t[4] = {};
  pid_t parent = -1;
  return read_stat_times(pid, t, &parent) ? parent : -1;
}

double tree_cpu_seconds(pid_t parent) {
  double total = std::max(0.0, proc_cpu_seconds(parent, true));
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    int64_t t[4] = {};
    pid_t ppid = 0;
    if (read_stat_times(static_cast<pid_t>(std::stoll(name)), t, &ppid) && ppid == parent)
      total += ticks_to_seconds(t[0] + t[1]);
  }
  return total;
}

void copy_topic(log::KafkaLog& kafka, const std::string& registry_url, const std::string& topic,
                int64_t total, int32_t partitions,
                const std::function<void(const core::Telemetry&, std::string&)>& encode,
                const std::function<void(const core::Telemetry&)>& seen) {
  bool write = static_cast<bool>(encode);
  if (write) {
    log::TopicConfig tc;
    tc.partitions = partitions;
    kafka.create_topic(topic, tc);  // no-op when it exists
    // A topic just created answers NOT_LEADER_FOR_PARTITION until its leaders are elected.
    int64_t already = -1;
    for (const auto until = Clock::now() + std::chrono::seconds(30); already < 0;) {
      try {
        already = sum(kafka.end_offsets(topic));
      } catch (const log::LogError&) {
        if (Clock::now() > until) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    write = already < total;
  }
  if (!write && !seen) return;
  auto consumer = kafka.consumer("fleettwin.bench.sink.copy." + std::to_string(::getpid()));
  consumer->subscribe({core::topics::kTelemetry});
  auto producer = kafka.producer();
  registry::TelemetryReader reader(std::make_shared<registry::SchemaRegistryClient>(registry_url));
  core::Telemetry t;
  std::string error, value;
  int64_t copied = 0;
  auto last_record = Clock::now();
  while (copied < total) {
    auto batch = consumer->poll(5000, std::chrono::milliseconds(500));
    if (batch.empty() && Clock::now() - last_record > std::chrono::seconds(30))
      throw std::runtime_error("copy to " + topic + ": no record for 30 s after " + std::to_string(copied));
    if (!batch.empty()) last_record = Clock::now();
    for (const auto& r : batch) {
      ++copied;
      if (!reader.read(r.value, t, &error)) continue;  // the sink skips it too
      if (seen) seen(t);
      if (!write) continue;
      value.clear();
      encode(t, value);
      producer->send(log::OutRecord{topic, r.key, value, {}, r.partition, r.timestamp_ms});
    }
    if (copied % 100000 < static_cast<int64_t>(batch.size()))
      spdlog::info("bench sink: {} {} / {} records to {}", write ? "copied" : "read", copied, total, topic);
  }
  producer->flush(std::chrono::seconds(60));
  consumer->close();
}

SinkRate run_fleettwin(const Config& base, int64_t max_wall_ms, const std::function<double()>& server_cpu) {
  Config config = base;
  config.set(keys::group,
             "fleettwin.bench.sink." + std::to_string(::getpid()) + "." +
                 std::to_string(Clock::now().time_since_epoch().count()),
             "bench");
  app::RunControl control;
  control.max_wall_ms = max_wall_ms;
  control.progress = true;
  control.stop_when_caught_up = true;
  const double server0 = server_cpu ? server_cpu() : 0;
  const double cpu0 = core::process_cpu_seconds();
  const auto s = app::run_pipeline(config, control, app::Roles::only("sink"));
  SinkRate r;
  r.cpu_seconds = core::process_cpu_seconds() - cpu0;
  if (server_cpu) r.server_cpu_seconds = server_cpu() - server0;
  r.rows = s.stored_this_run;
  r.twin_upserts = s.twin_writes;
  // Wall time includes the one idle second that tells the run it caught up.
  r.seconds = s.elapsed_s > 1 ? s.elapsed_s - 1 : s.elapsed_s;
  return r;
}

ConnectProcess::ConnectProcess(const std::string& brokers, const std::string& connector_file,
                               std::map<std::string, std::string> values) {
  const fs::path deploy = fs::path(FLEETTWIN_SOURCE_DIR) / "deploy" / "kafka-connect";
  const fs::path script = fs::path(FLEETTWIN_SOURCE_DIR) / "scripts" / "services" / "kafka-connect";
  char tmpl[] = "/tmp/fleettwin-bench-connect.XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  _dir = tmpl;
  values["BROKERS"] = brokers;
  values["DIR"] = _dir.string();
  const fs::path worker = _dir / "worker.properties", connector = _dir / connector_file;
  std::ofstream(worker) << fill(read_text(deploy / "worker.properties"), values);
  std::ofstream(connector) << fill(read_text(deploy / connector_file), values);
  _log = (_dir / "connect.log").string();
  std::fflush(nullptr);  // else the child's freopen writes this process's buffered output a second time
  _pid = ::fork();
  if (_pid < 0) throw std::runtime_error("fork failed");
  if (_pid == 0) {
    ::setpgid(0, 0);
    if (FILE* f = std::freopen(_log.c_str(), "w", stdout)) ::dup2(::fileno(f), 2);
    ::execl(script.c_str(), script.c_str(), "standalone", worker.c_str(), connector.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(_pid, _pid);
}

ConnectProcess::~ConnectProcess() {
  try {
    stop(true);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor on the error path keeps the first error
  }
}

bool ConnectProcess::running() {
  int status = 0;
  if (_pid > 0 && ::waitpid(_pid, &status, WNOHANG) == _pid) _pid = -1;
  return _pid > 0;
}

void ConnectProcess::stop(bool keep_log) {
  if (_pid > 0) {
    ::kill(-_pid, SIGTERM);
    int status = 0;
    ::waitpid(_pid, &status, 0);
    _pid = -1;
  }
  if (!keep_log && !_dir.empty()) fs::remove_all(_dir);
}

SinkRate time_connector(ConnectProcess& connect, const std::function<int64_t()>& count, int64_t total,
                        int64_t seconds, std::chrono::milliseconds poll,
                        const std::function<double()>& server_cpu) {
  SinkRate r;
  int64_t first_count = -1, n = 0;
  double cpu0 = 0, server0 = 0;
  Clock::time_point first;
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  for (int64_t polls = 1;; ++polls) {
    std::this_thread::sleep_for(poll);
    if (!connect.running())
      throw std::runtime_error("Kafka Connect exited early (log: " + connect.log_path() + ")");
    // A task that failed (a bad config, a record it cannot write) is not restarted, and the worker lives on.
    if (polls % 20 == 0 && read_text(connect.log_path()).find("Task threw an uncaught") != std::string::npos)
      throw std::runtime_error("the connector's task failed (log: " + connect.log_path() + ")");
    n = count();
    if (n > 0 && first_count < 0) {
      first_count = n;
      first = Clock::now();
      cpu0 = connect.cpu_seconds();
      if (server_cpu) server0 = server_cpu();
    }
    if (n >= total) {
      r.seconds = std::chrono::duration<double>(Clock::now() - first).count();
      r.cpu_seconds = connect.cpu_seconds() - cpu0;
      if (server_cpu) r.server_cpu_seconds = server_cpu() - server0;
      break;
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error("connector stored " + std::to_string(n) + " of " + std::to_string(total) +
                               " in " + std::to_string(seconds) + " s (log: " + connect.log_path() + ")");
    }
  }
  connect.stop();
  r.rows = total - first_count;
  return r;
}

void print_run(int run, const char* side, const SinkRate& r, const std::string& unit) {
  std::printf("run %d %s: %lld %s in %.2f s: %.0f %s/s; %.2f CPU-s: %.0f %s per CPU-second", run + 1, side,
              static_cast<long long>(r.rows), unit.c_str(), r.seconds, r.rows_per_s(), unit.c_str(),
              r.cpu_seconds, r.rows_per_cpu_s(), unit.c_str());
  if (r.server_cpu_seconds > 0) std::printf("; server %.2f CPU-s", r.server_cpu_seconds);
  if (r.twin_upserts > 0)
    std::printf("; %lld twin upserts, %.0f/s", static_cast<long long>(r.twin_upserts), r.twins_per_s());
  std::printf("\n");
  std::fflush(stdout);
}

namespace {

/// Medians of one side's runs.
struct Medians {
  double rows_per_s, twins_per_s, cpu_s, rows_per_cpu_s, server_cpu_s;
};

Medians medians(const std::vector<SinkRate>& runs) {
  std::vector<double> rows, twins, cpu, per_cpu, server;
  for (const auto& r : runs) {
    rows.push_back(r.rows_per_s());
    twins.push_back(r.twins_per_s());
    cpu.push_back(r.cpu_seconds);
    per_cpu.push_back(r.rows_per_cpu_s());
    server.push_back(r.server_cpu_seconds);
  }
  namespace b = app::bench;
  return {b::median(rows), b::median(twins), b::median(cpu), b::median(per_cpu), b::median(server)};
}

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

void report(const SinkFlags& flags, int64_t total, const std::vector<SinkRate>& ft_runs,
            const std::vector<SinkRate>& kc_runs, const std::string& unit, const std::string& extra) {
  const Medians ft = medians(ft_runs), kc = medians(kc_runs);
  const char* u = unit.c_str();
  std::printf("median of %lld runs: fleettwin %.0f %s/s, %.0f %s per CPU-second, %.0f twin upserts/s",
              static_cast<long long>(flags.runs), ft.rows_per_s, u, ft.rows_per_cpu_s, u, ft.twins_per_s);
  if (!flags.no_connector) {
    std::printf("; connector %.0f %s/s, %.0f %s per CPU-second; ratio %.2fx, per CPU-second %.2fx",
                kc.rows_per_s, u, kc.rows_per_cpu_s, u, ratio(ft.rows_per_s, kc.rows_per_s),
                ratio(ft.rows_per_cpu_s, kc.rows_per_cpu_s));
  }
  std::printf("\n");
  if (flags.json_path.empty()) return;
  std::ofstream out(flags.json_path);
  out << "{\"records\": " << total << ", \"runs\": " << flags.runs << ", \"fleettwin_" << unit
      << "_per_s\": " << ft.rows_per_s << ", \"fleettwin_twin_upserts_per_s\": " << ft.twins_per_s
      << ", \"fleettwin_cpu_s\": " << ft.cpu_s << ", \"fleettwin_" << unit
      << "_per_cpu_s\": " << ft.rows_per_cpu_s << ", \"fleettwin_server_cpu_s\": " << ft.server_cpu_s
      << ", \"connector_" << unit << "_per_s\": " << kc.rows_per_s << ", \"connector_cpu_s\": " << kc.cpu_s
      << ", \"connector_" << unit << "_per_cpu_s\": " << kc.rows_per_cpu_s
      << ", \"connector_server_cpu_s\": " << kc.server_cpu_s
      << ", \"ratio\": " << ratio(ft.rows_per_s, kc.rows_per_s)
      << ", \"ratio_per_cpu\": " << ratio(ft.rows_per_cpu_s, kc.rows_per_cpu_s) << extra << "}\n";
}

}  // namespace fleettwin::cli::sink_bench
