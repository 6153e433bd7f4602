// `fleettwin bench soak`: a long `up --fast` run with history retention shortened, sampled as it goes, to
// show that the store and the process reach a flat size once retention removes as much as arrives (issue 19's
// soak).
#include "soak_bench.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "app/pipeline.h"
#include "cli/run_output.h"
#include "store/sqlite/sqlite_store.h"

namespace fleettwin::app::bench {

using config::Config;
namespace keys = config::keys;

namespace {

/// Resident memory of this process now, in MiB (/proc/self/statm: pages), not the peak: a soak asks whether
/// memory stays flat, which the peak cannot show.
double rss_mb() {
  std::ifstream in("/proc/self/statm");
  long long size = 0, resident = 0;
  in >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

/// Bytes of every file under `dir` (the SQLite store with its WAL, the edge's files): what the run holds on
/// disk.
double dir_mb(const std::string& dir) {
  std::error_code ec;
  uintmax_t bytes = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) bytes += it->file_size(ec);
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

/// Rows and event-time span of the stored history, from the SQLite store's per-generation summary
/// (telemetry_gens: a few hundred rows at most), on a read-only connection of its own beside the sink's. The
/// TwinStore interface has no cheap row count (history_stats() counts distinct pairs, a scan of the history).
struct History {
  int64_t rows = 0, min_ts = 0, max_ts = 0;
};
History history_of(const std::string& path) {
  History h;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db,
                           "SELECT coalesce(sum(rows),0), coalesce(min(min_ts),0), coalesce(max(max_ts),0) "
                           "FROM telemetry_gens",
                           -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      h.rows = sqlite3_column_int64(s, 0);
      h.min_ts = sqlite3_column_int64(s, 1);
      h.max_ts = sqlite3_column_int64(s, 2);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return h;
}

/// A loopback port free now, for the run's HTTP server (the soak reads its /metrics); 0 when none.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  auto* addr = reinterpret_cast<sockaddr*>(&a);
  if (::bind(fd, addr, sizeof a) == 0 && ::getsockname(fd, addr, &len) == 0) port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

/// The aggregate stage's engine memory (fleettwin_aggregate_memory_bytes on the run's /metrics) in MiB; -1
/// when it cannot be read (the server not up yet, aggregates off).
double aggregate_mb(int port, const std::string& data_dir) {
  if (port == 0) return -1;
  std::ifstream token_file(data_dir + "/api-token");
  std::string token;
  token_file >> token;
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(2);
  http.set_read_timeout(10);
  const auto res = http.Get("/metrics", {{"Authorization", "Bearer " + token}});
  if (!res || res->status != 200) return -1;
  const std::string name = "\nfleettwin_aggregate_memory_bytes ";
  const auto at = res->body.find(name);
  if (at == std::string::npos) return -1;
  return std::strtod(res->body.c_str() + at + name.size(), nullptr) / (1024.0 * 1024.0);
}

struct Sample {
  double wall_s = 0, sim_min = 0, store_mb = 0, rss_mb = 0, aggregate_mb = -1;
  int64_t rows = 0;
};

/// max / min of `field` over the samples from simulated minute `from` on that have it (1 when fewer than
/// two).
template <typename F>
double spread(const std::vector<Sample>& samples, double from, F field) {
  double lo = 0, hi = 0;
  bool any = false;
  for (const auto& s : samples) {
    const double v = field(s);
    if (s.sim_min < from || v < 0) continue;  // negative: not read in that sample
    lo = any ? std::min(lo, v) : v;
    hi = any ? std::max(hi, v) : v;
    any = true;
  }
  return any && lo > 0 ? hi / lo : 1.0;
}

}  // namespace

int run_soak_bench(const SoakFlags& f, Config& config, std::atomic<int>& stop_signals) {
  if (config.get(keys::data_dir) == keys::data_dir.default_text()) {
    auto dir = std::filesystem::temp_directory_path() / ("fleettwin-soak-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    config.set(keys::data_dir, dir.string(), "bench");
  }
  config.set(keys::sim_fast, "true", "bench");
  config.set(keys::registry_listen, "127.0.0.1:0", "bench");
  // The API on a free loopback port: its /metrics has the aggregate engine's memory to sample beside RSS.
  const int port = free_port();
  config.set(keys::http_listen, port == 0 ? "" : "127.0.0.1:" + std::to_string(port), "bench");
  if (config.get(keys::sim_duration).count() <= 0)
    throw config::ConfigError("bench soak needs --duration (simulated)");
  const std::string dir = config.get(keys::data_dir);
  const std::string db = store::SqliteStore::path_in(dir);
  const double retention_min =
      static_cast<double>(config.get(keys::store_history_retention).count()) / 60'000.0;

  const app::RunControl control{&stop_signals, 0, false};
  auto run = std::async(std::launch::async, [&] { return app::run_pipeline(config, control); });
  std::vector<Sample> samples;
  const auto start = std::chrono::steady_clock::now();
  int64_t origin = 0;
  std::printf("%8s %10s %12s %10s %8s %8s\n", "wall s", "sim min", "rows", "store MB", "RSS MB", "agg MB");
  while (run.wait_for(std::chrono::seconds(f.sample_s)) != std::future_status::ready) {
    const History h = history_of(db);
    if (h.rows == 0) continue;
    if (origin == 0) origin = h.min_ts;
    Sample s{std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
             static_cast<double>(h.max_ts - origin) / 60'000.0,
             dir_mb(dir),
             rss_mb(),
             aggregate_mb(port, dir),
             h.rows};
    samples.push_back(s);
    std::printf("%8.0f %10.1f %12lld %10.1f %8.0f %8.1f\n", s.wall_s, s.sim_min, (long long)s.rows,
                s.store_mb, s.rss_mb, s.aggregate_mb);
    std::fflush(stdout);
  }
  const auto summary = run.get();
  cli::print_summary(summary);
  // Flat means: from two retention periods on (the first fills the history, the second has retention
  // removing as much as arrives), the largest sample over the smallest.
  const double from = 2 * retention_min;
  const double store_ratio = spread(samples, from, [](const Sample& s) { return s.store_mb; });
  const double rss_ratio = spread(samples, from, [](const Sample& s) { return s.rss_mb; });
  const double rows_ratio =
      spread(samples, from, [](const Sample& s) { return static_cast<double>(s.rows); });
  const double aggregate_ratio = spread(samples, from, [](const Sample& s) { return s.aggregate_mb; });
  std::printf(
      "bench soak: %.0f msg/s over %.0f simulated min (retention %.0f min); from minute %.0f on, max/min of "
      "store size %.2f, RSS %.2f, rows %.2f, aggregate engine %.2f; lost %lld, duplicates %lld\n",
      summary.msgs_per_s, samples.empty() ? 0.0 : samples.back().sim_min, retention_min, from, store_ratio,
      rss_ratio, rows_ratio, aggregate_ratio, (long long)summary.lost, (long long)summary.duplicates);
  if (!f.json.empty()) {
    std::string json = "{\"retention_min\":" + std::to_string(retention_min) +
                       ",\"store_ratio\":" + std::to_string(store_ratio) +
                       ",\"rss_ratio\":" + std::to_string(rss_ratio) +
                       ",\"rows_ratio\":" + std::to_string(rows_ratio) +
                       ",\"aggregate_ratio\":" + std::to_string(aggregate_ratio) +
                       ",\"summary\":" + summary.to_json() + ",\"samples\":[";
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const auto& s = samples[i];
      json += (i ? "," : "") + std::string("{\"wall_s\":") + std::to_string(s.wall_s) +
              ",\"sim_min\":" + std::to_string(s.sim_min) + ",\"rows\":" + std::to_string(s.rows) +
              ",\"store_mb\":" + std::to_string(s.store_mb) + ",\"rss_mb\":" + std::to_string(s.rss_mb) +
              ",\"aggregate_mb\":" + std::to_string(s.aggregate_mb) + "}";
    }
    std::ofstream(f.json) << json << "]}\n";
  }
  if (!f.keep) std::filesystem::remove_all(dir);
  return summary.clean ? 0 : 1;
}

}  // namespace fleettwin::app::bench
