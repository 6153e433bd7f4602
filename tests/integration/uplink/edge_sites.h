#pragma once

// What the edge-site integration tests share: an edge site as issue 18 describes it (its own mosquitto, an
// `up --mqtt ADDR --no-sim --uplink ...` process, and its cars in a separate `fleettwin sim --mqtt` process),
// the central broker's pid for an outage, and reads of the SQLite stores. Header-only; test main thread.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "store/sqlite/sqlite_store.h"
#include "support/process.h"
#include "support/roles.h"
#include "support/temp_dir.h"

namespace fleettwin::testing {

/// The pid of the broker scripts/services/kafka started at `address` (its state dir,
/// scripts/services/lib.sh).
inline pid_t broker_pid(const std::string& address) {
  std::string root;
  if (const char* s = std::getenv("FLEETTWIN_SERVICES_STATE"))
    root = s;
  else
    root = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/fleettwin-services-" +
           std::to_string(getuid());
  const auto port = address.substr(address.rfind(':') + 1);
  return static_cast<pid_t>(std::stol(read_file(root + "/kafka/" + port + "/pid")));
}

/// A broker for one site, with the deployed queue for an absent session (deploy/mosquitto), not the test
/// default of 10,000: the edge's session holds what the cars send while the edge restarts or pushes back.
inline std::unique_ptr<Service> site_broker() {
  ::setenv("FLEETTWIN_MOSQUITTO_EXTRA_CONFIG", "max_queued_messages 1000000", 1);
  auto broker = std::make_unique<Service>(FLEETTWIN_SOURCE_DIR, "mosquitto");
  ::unsetenv("FLEETTWIN_MOSQUITTO_EXTRA_CONFIG");
  return broker;
}

/// One edge site: its broker, the edge process (restartable on the same data dir) and its car process.
/// Names: `<site>` is the data dir, `<site>-<n>.log` the edge's n-th run, `<site>-cars.log` the cars.
class EdgeSite {
 public:
  EdgeSite(const TempDir& dir, std::string site, std::string central_kafka, std::string central_registry,
           std::vector<std::string> extra = {})
      : _dir(dir),
        _site(std::move(site)),
        _kafka(std::move(central_kafka)),
        _registry(std::move(central_registry)),
        _extra(std::move(extra)),
        _broker(site_broker()) {}
  ~EdgeSite() {
    for (const pid_t pid : {_edge, _cars})
      if (pid > 0) stop(pid, SIGKILL);
  }

  /// Starts the edge and waits for its progress line (its bridge subscribed).
  void start_edge() {
    std::vector<std::string> args{
        "up",     "--mqtt",      _broker->address(),  "--no-sim",    "--data-dir", data_dir(),
        "--http", "127.0.0.1:0", "--registry-listen", "127.0.0.1:0", "--uplink",   _kafka,
        "--site", _site,         "--uplink-registry", _registry};
    args.insert(args.end(), _extra.begin(), _extra.end());
    const auto log = edge_log(++_runs);
    _edge = spawn(kBin, args, log);
    ASSERT_TRUE(eventually([&] { return read_file(log).find("msg/s") != std::string::npos; },
                           std::chrono::seconds(60)))
        << read_file(log);
  }
  void kill_edge() {
    ASSERT_EQ(stop(_edge, SIGKILL), -SIGKILL);
    _edge = -1;
  }
  /// SIGTERM: the edge drains and exits 0.
  void stop_edge() {
    EXPECT_EQ(stop(_edge), 0) << read_file(edge_log(_runs));
    _edge = -1;
  }

  /// `cars` cars named `<site>-NNNNN` publishing one message per `interval_ms` for `seconds` s, QoS 1,
  /// answering the commands they get (`fleettwin sim --mqtt` in its own process).
  void start_cars(int cars, int interval_ms, int seconds) {
    const auto config = _dir.file(_site + "-cars.yaml");
    std::ofstream(config) << "sim:\n  id_prefix: " << _site << "-\n";
    _cars = spawn(kBin,
                  {"--config", config, "sim", "--mqtt", _broker->address(), "--cars", std::to_string(cars),
                   "--interval", std::to_string(interval_ms) + "ms", "--duration",
                   std::to_string(seconds) + "s", "--qos", "1", "--failure-rate", "0"},
                  _dir.file(_site + "-cars.log"));
  }
  /// Waits for the cars to end and expects them to have published `published` messages, all acknowledged.
  void expect_cars_done(int64_t published) {
    EXPECT_EQ(stop(_cars, 0), 0) << read_file(_dir.file(_site + "-cars.log"));
    _cars = -1;
    const auto log = read_file(_dir.file(_site + "-cars.log"));
    EXPECT_NE(log.find("published " + std::to_string(published)), std::string::npos) << log;
    EXPECT_NE(log.find("acks pending 0"), std::string::npos) << log;
  }

  /// Publishes one telemetry message of `car` with `seq`, stamped now, to this site's broker, QoS 1 (a car of
  /// its own, mosquitto_pub).
  void publish(const std::string& car, int64_t seq) {
    const std::string json = R"({"car":")" + car + R"(","ts":)" + std::to_string(core::wall_clock_ms()) +
                             R"(,"seq":)" + std::to_string(seq) +
                             R"(,"lat":48.1,"lon":11.5,"speed":12.5,"coolant_temp":90})";
    const auto port = _broker->address().substr(_broker->address().rfind(':') + 1);
    const auto r = run("mosquitto_pub", {"-h", "127.0.0.1", "-p", port, "-q", "1", "-i", car, "-t",
                                         "fleet/" + car + "/telemetry", "-m", json});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }

  std::string data_dir() const { return _dir.file(_site); }
  std::string db() const { return store::SqliteStore::path_in(data_dir()); }
  std::string edge_log(int run) const { return _dir.file(_site + "-" + std::to_string(run) + ".log"); }
  std::string last_log() const { return read_file(edge_log(_runs)); }
  /// The edge's API address as it printed it ("api: serving http://...").
  std::string api_url() const {
    const auto log = last_log();
    const auto at = log.find("api: serving ");
    if (at == std::string::npos) return "";
    const auto from = at + 13;
    return log.substr(from, log.find_first_of(" \n", from) - from);
  }
  /// GET `route` of the edge's API (with the admin token `up` keeps in its data dir), "" if it does not
  /// answer.
  std::string api(const std::string& route) const {
    auto token = read_file(data_dir() + "/api-token");
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    return run("curl", {"-sf", "-H", "Authorization: Bearer " + token, api_url() + route}).out;
  }
  /// The edge's /metrics page (with the admin token `up` keeps in its data dir), "" if it does not answer.
  std::string metrics() const {
    auto token = read_file(data_dir() + "/api-token");
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    return run("curl", {"-sf", "-H", "Authorization: Bearer " + token, api_url() + "/metrics"}).out;
  }
  const std::string& site() const { return _site; }
  const std::string& broker() const { return _broker->address(); }

 private:
  const TempDir& _dir;
  std::string _site, _kafka, _registry;
  std::vector<std::string> _extra;
  std::unique_ptr<Service> _broker;
  pid_t _edge = -1;
  pid_t _cars = -1;
  int _runs = 0;
};

/// A gauge of a Prometheus text page, or -1 when absent.
inline double metric_value(const std::string& page, const std::string& name) {
  const auto at = page.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + name.size() + 2));
}

inline store::HistoryStats stats_of(const std::string& db) { return store::SqliteStore(db).history_stats(); }

}  // namespace fleettwin::testing
