// `fleettwin bench fleet`: the reference's topology, every stage its own process, at its scale, with faults.
#include "scenarios/fleet_bench.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "app/mqtt_front.h"
#include "core/clock.h"
#include "scenarios/fleet_check.h"
#include "scenarios/fleet_procs.h"
#include "sim/feed/mqtt_fleet.h"

namespace fleettwin::app {

using config::Config;
namespace keys = config::keys;
namespace fs = std::filesystem;
using bench::RoleProcess;
using bench::ServiceInstance;

namespace {

using Clock = std::chrono::steady_clock;

bool log_contains(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str().find(needle) != std::string::npos;
}

/// Every process of the topology, started in dependency order and stopped in reverse (the destructor).
struct Topology {
  std::unique_ptr<ServiceInstance> kafka_service, postgres_service, ferretdb_service;
  std::vector<std::unique_ptr<ServiceInstance>> shards;  ///< one mosquitto per shard, restartable one by one
  std::string kafka, postgres, mongo, registry_url, brokers;
  std::vector<std::unique_ptr<RoleProcess>> roles;  ///< registry first

  ~Topology() {
    for (auto it = roles.rbegin(); it != roles.rend(); ++it) (*it)->stop(SIGTERM, 20);
  }
  RoleProcess* role(const std::string& name) {
    for (auto& r : roles)
      if (r->name() == name) return r.get();
    return nullptr;
  }
};

void start_services(Topology& t, const FleetBenchOptions& o, int64_t shards) {
  t.kafka = o.kafka;
  if (t.kafka.empty()) {
    t.kafka_service = std::make_unique<ServiceInstance>(
        "kafka", std::vector<std::string>{},
        std::map<std::string, std::string>{{"FLEETTWIN_KAFKA_HEAP", "-Xms256m -Xmx1g"}});
    t.kafka = t.kafka_service->address();
  }
  if (o.use_mongo()) {
    t.mongo = o.mongo;
    if (t.mongo.empty()) {
      t.ferretdb_service = std::make_unique<ServiceInstance>("ferretdb");
      t.mongo = t.ferretdb_service->address();
    }
  } else {
    t.postgres = o.postgres;
    if (t.postgres.empty()) {
      t.postgres_service = std::make_unique<ServiceInstance>("postgres");
      t.postgres = t.postgres_service->address();
    }
  }
  // Persistent sessions survive a graceful broker restart (the "mosquitto shard restarted" fault): what a
  // broker acknowledged to a car and had not yet handed to a bridge is kept.
  for (int64_t i = 0; i < shards; ++i) {
    t.shards.push_back(std::make_unique<ServiceInstance>(
        "mosquitto", std::vector<std::string>{},
        std::map<std::string, std::string>{
            {"FLEETTWIN_MOSQUITTO_PERSISTENCE", "true"},
            {"FLEETTWIN_MOSQUITTO_EXTRA_CONFIG", "max_queued_messages 1000000"}}));
    t.brokers += (i ? "," : "") + t.shards.back()->address();
  }
}

/// Waits until `role`'s log holds `needle` (its ready line); std::runtime_error with the log's path if not.
void wait_ready(RoleProcess& role, const std::string& needle, int seconds) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (!log_contains(role.log_path(), needle)) {
    if (!role.alive() || Clock::now() > deadline)
      throw std::runtime_error("bench fleet: " + role.name() + " did not start (log: " + role.log_path() +
                               ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void start_roles(Topology& t, const FleetBenchOptions& o, const fs::path& dir) {
  const std::map<std::string, std::string> store_env =
      t.mongo.empty() ? std::map<std::string, std::string>{{"FLEETTWIN_STORE_POSTGRES_URI", t.postgres}}
                      : std::map<std::string, std::string>{{"FLEETTWIN_STORE_MONGO_URI", t.mongo}};
  auto add = [&](const std::string& name, std::vector<std::string> args,
                 std::map<std::string, std::string> env = {}) {
    t.roles.push_back(std::make_unique<RoleProcess>(name, std::move(args), (dir / (name + ".log")).string(),
                                                    std::move(env)));
    t.roles.back()->start();
    return t.roles.back().get();
  };
  const auto registry_port = std::to_string(free_port());
  t.registry_url = "http://127.0.0.1:" + registry_port;
  auto* registry = add("registry", {"registry", "--listen", "127.0.0.1:" + registry_port, "--data-dir",
                                    (dir / "registry").string()});
  wait_ready(*registry, "http://", 30);
  auto role_args = [&](const std::string& role, const std::string& name) {
    return std::vector<std::string>{role,
                                    "--kafka",
                                    t.kafka,
                                    "--schema-registry",
                                    t.registry_url,
                                    "--kafka-set",
                                    "session.timeout.ms=6000",
                                    "--data-dir",
                                    (dir / name).string()};
  };
  for (int64_t i = 1; i <= o.copies; ++i) {
    const auto n = std::to_string(i);
    add("bridge-" + n, {"bridge", "--mqtt", t.brokers, "--kafka", t.kafka, "--schema-registry",
                        t.registry_url, "--client-id", "fleettwin-bridge-" + n});
    add("process-" + n, role_args("process", "process-" + n));
    add("twin-" + n, role_args("twin", "twin-" + n));
    add("sink-" + n, role_args("sink", "sink-" + n), store_env);
  }
  // The score role trains the fleet's model from the first minute of traffic (a shortened warm-up: the bench
  // runs minutes, not hours), then scores; alerts become schedule_service commands to the cars.
  auto score_args = role_args("score", "score");
  score_args.push_back("--train-warmup");  // a role waits for a published model unless told to train one
  add("score", score_args,
      {{"FLEETTWIN_ML_WARMUP", "60s"}, {"FLEETTWIN_ML_MAX_ROWS", "60000"}, {"FLEETTWIN_ML_EPOCHS", "8"}});
  add("api",
      {"api", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--kafka", t.kafka, "--data-dir",
       (dir / "api").string()},
      store_env);
}

struct FaultStep {
  std::string name;
  std::function<void()> inject;  ///< returns when the fault has ended (the process or service is back)
};

std::vector<FaultStep> fault_schedule(Topology& t, const FleetBenchOptions& o) {
  std::vector<FaultStep> steps;
  for (const char* name : {"bridge-1", "process-1", "twin-1", "sink-1", "score", "api", "registry"}) {
    RoleProcess* r = t.role(name);
    if (!r) continue;
    steps.push_back({std::string("kill ") + name, [r] {
                       r->stop(SIGKILL);
                       r->start();
                     }});
  }
  steps.push_back({"restart kafka", [&t] {
                     if (!t.kafka_service) throw std::runtime_error("--faults needs the bench's own Kafka");
                     t.kafka_service->control("restart");
                   }});
  const bool mongo = !t.mongo.empty();
  steps.push_back({mongo ? "restart ferretdb" : "restart postgres", [&t] {
                     ServiceInstance* store =
                         t.postgres_service ? t.postgres_service.get() : t.ferretdb_service.get();
                     if (!store) throw std::runtime_error("--faults needs the bench's own store server");
                     store->control("pause");  // PostgreSQL: an immediate shutdown, as a crash
                     store->control("resume");
                   }});
  steps.push_back({"restart mosquitto shard 1", [&t] { t.shards.front()->control("restart"); }});
  steps.push_back({"sinks stopped " + std::to_string(o.sink_pause_s) + " s", [&t, &o] {
                     std::vector<RoleProcess*> sinks;
                     for (auto& r : t.roles)
                       if (r->name().rfind("sink-", 0) == 0) sinks.push_back(r.get());
                     for (auto* s : sinks) s->stop(SIGTERM);
                     std::this_thread::sleep_for(std::chrono::seconds(o.sink_pause_s));
                     for (auto* s : sinks) s->start();
                   }});
  return steps;
}

/// Scheduling niceness of the cars' worker processes.
constexpr int kCarsNice = 10;

/// The cars: sim.cars in `fleettwin sim --mqtt` worker processes on a thread of their own until `stop`.
class Cars {
 public:
  Cars(Config& config, const std::string& brokers) {
    config.set(keys::mqtt_brokers, brokers, "bench");
    config.set(keys::sim_duration, "0", "bench");
    const auto addresses = parse_brokers(brokers, "bench fleet");
    auto options = mqtt_fleet_options(config, fleet_config(config), addresses);
    options.ground_truth_path.clear();
    const auto args = sim_worker_args(config, addresses);
    const auto per_process = static_cast<std::size_t>(config.get(keys::mqtt_cars_per_process));
    _thread = std::thread([this, options, args, per_process] {
      // The cars are the outside world, on machines of their own in the reference (its load generator ran in
      // a cluster of its own). Here they share two cores with the system under test, so their worker
      // processes (forked from this thread, which they inherit it from) run at a lower priority: they take
      // what the roles leave. Whether they still publish at the configured rate is what msgs_per_s reports.
      if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kCarsNice) != 0)
        spdlog::warn("bench fleet: cannot lower the cars' priority: {}", std::strerror(errno));
      try {
        sim::run_mqtt_fleet_processes(options, per_process, args, _stop,
                                      [this](const sim::MqttFleetStats& s) {
                                        std::lock_guard lock(_mu);
                                        _last = s;
                                      });
      } catch (const std::exception& e) {
        spdlog::error("bench fleet: cars: {}", e.what());
      }
      _done = true;
    });
  }
  ~Cars() { stop(); }
  void stop() {
    _stop = 1;
    if (_thread.joinable()) _thread.join();
  }
  sim::MqttFleetStats stats() {
    std::lock_guard lock(_mu);
    return _last;
  }
  bool done() const { return _done.load(); }

 private:
  std::atomic<int> _stop{0};
  std::atomic<bool> _done{false};
  std::mutex _mu;
  sim::MqttFleetStats _last;
  std::thread _thread;
};

/// One line of progress a second; restarts a role that died on its own (counted in its starts).
void tick(Topology& t, Cars& cars, const Clock::time_point started, const std::string& phase,
          int64_t cars_total) {
  for (auto& r : t.roles) {
    if (!r->alive()) {
      spdlog::warn("bench fleet: {} exited on its own; restarting it (log: {})", r->name(), r->log_path());
      r->note_crash();
      r->start();
    }
    r->sample();
  }
  const auto s = cars.stats();
  const bool tty = ::isatty(STDERR_FILENO);
  std::fprintf(stderr, "%s[%.0fs] %s | connected %lld/%lld | acked %lld | pending %lld | reconnects %lld%s",
               tty ? "\r\033[K" : "", std::chrono::duration<double>(Clock::now() - started).count(),
               phase.c_str(), (long long)s.connected, (long long)cars_total, (long long)s.acked,
               (long long)s.pending, (long long)s.reconnects, tty ? "" : "\n");
}

}  // namespace

std::string FleetBenchResult::to_json() const {
  std::string j = "{\"cars\":" + std::to_string(cars) + ",\"msgs_per_s\":" + std::to_string(msgs_per_s) +
                  ",\"p50_latency_ms\":" + std::to_string(p50_latency_ms) +
                  ",\"p99_latency_ms\":" + std::to_string(p99_latency_ms) +
                  ",\"published\":" + std::to_string(published) +
                  ",\"unrouted\":" + std::to_string(unrouted) + ",\"stored\":" + std::to_string(stored) +
                  ",\"lost\":" + std::to_string(lost) + ",\"duplicates\":" + std::to_string(duplicates) +
                  ",\"twins_behind\":" + std::to_string(twins_behind) +
                  ",\"commands_sent\":" + std::to_string(commands_sent) +
                  ",\"commands_answered\":" + std::to_string(commands_answered) + ",\"roles\":{";
  for (std::size_t i = 0; i < roles.size(); ++i)
    j += (i ? ",\"" : "\"") + roles[i].name + "\":{\"cpu_s\":" + std::to_string(roles[i].cpu_s) +
         ",\"peak_rss_mb\":" + std::to_string(roles[i].peak_rss_mb) +
         ",\"starts\":" + std::to_string(roles[i].starts) +
         ",\"crashes\":" + std::to_string(roles[i].crashes) + "}";
  j += "}";
  if (!faults.empty()) {
    j += ",\"faults\":[";
    for (std::size_t i = 0; i < faults.size(); ++i)
      j += (i ? ",{\"name\":\"" : "{\"name\":\"") + faults[i].name +
           "\",\"recovery_s\":" + std::to_string(faults[i].recovery_s) +
           ",\"max_latency_ms\":" + std::to_string(faults[i].max_latency_ms) + "}";
    j += "]";
  }
  return j + "}";
}
FleetBenchResult run_fleet_bench(Config config, const FleetBenchOptions& o,
                                 const std::atomic<int>& stop_signals) {
  FleetBenchResult res;
  res.cars = config.get(keys::sim_cars);
  const int64_t shards = std::max<int64_t>(config.get(keys::mqtt_shards), (res.cars + 14999) / 15000);
  const bool own_dir = o.dir.empty();
  const fs::path dir =
      own_dir ? fs::temp_directory_path() / ("fleettwin-bench-fleet-" + std::to_string(::getpid()))
              : fs::path(o.dir);
  fs::create_directories(dir);
  config.set(keys::data_dir, (dir / "sim").string(), "bench");
  Topology t;
  start_services(t, o, shards);
  start_roles(t, o, dir);
  for (auto& r : t.roles)
    if (r->name().rfind("bridge-", 0) == 0) wait_ready(*r, "broker(s) -> Kafka", 60);

  const auto started = Clock::now();
  Cars cars(config, t.brokers);
  auto wait = [&](int64_t seconds, const std::string& phase) {
    const auto until = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < until && stop_signals.load() == 0 && !cars.done()) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      tick(t, cars, started, phase, res.cars);
    }
  };
  while (cars.stats().connected < res.cars && stop_signals.load() == 0 && !cars.done()) wait(1, "ramp");
  const int64_t steady_from = core::wall_clock_ms() + 10'000;
  int64_t steady_to = 0;
  if (o.faults) {
    wait(o.fault_spacing_s, "steady");
    steady_to = core::wall_clock_ms();
    const auto steps = fault_schedule(t, o);
    for (const auto& step : steps) {
      if (stop_signals.load() != 0) break;
      FleetFault f{step.name, core::wall_clock_ms()};
      spdlog::info("bench fleet: fault: {}", step.name);
      step.inject();
      f.end_ms = core::wall_clock_ms();
      res.faults.push_back(f);
      // After the last fault the cars go on long enough for its backlog to drain and its recovery to show.
      const bool last = res.faults.size() == steps.size();
      wait(last ? std::max<int64_t>(o.fault_spacing_s, 60) : o.fault_spacing_s, "after " + step.name);
    }
  } else {
    wait(o.seconds, "steady");
    steady_to = core::wall_clock_ms();
  }
  const int64_t cars_stopped_ms = core::wall_clock_ms();
  cars.stop();
  const auto final_stats = cars.stats();
  // PUBACKs count the cars' answers to commands too: what is left is at least the telemetry the brokers
  // acknowledged (exactly, when no answer is still unacknowledged).
  res.published = final_stats.acked - final_stats.answers;
  res.unrouted = final_stats.unrouted;
  std::fprintf(stderr, "\nbench fleet: cars stopped: %lld acknowledged; draining...\n",
               (long long)res.published);

  bench::FleetCheck check(t.mongo.empty() ? t.postgres : t.mongo, config);
  check.drain(res.published, 180, [&] {
    for (auto& r : t.roles) r->sample();
  });
  check.fill(res, steady_from, steady_to, cars_stopped_ms);
  for (auto& r : t.roles) {
    r->sample();
    res.roles.push_back({r->name(), r->cpu_s(), r->peak_rss_mb(), r->starts(), r->crashes()});
  }
  t.roles.clear();  // stop them before the services go
  if (own_dir) fs::remove_all(dir);
  return res;
}

}  // namespace fleettwin::app
