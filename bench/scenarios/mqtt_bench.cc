#include "scenarios/mqtt_bench.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "app/mqtt_front.h"
#include "codec/json.h"
#include "core/clock.h"
#include "core/histogram.h"
#include "core/metric_catalog.h"
#include "core/process_stats.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "sim/feed/mqtt_fleet.h"
#include "stages/bridge/bridge.h"

namespace fleettwin::app {

using config::Config;
namespace keys = config::keys;

namespace t = core::topics;
using Clock = std::chrono::steady_clock;

namespace {

/// Reads fleet.telemetry.raw and keeps every (car, seq) seen, and the publish-to-log latency once `measure`
/// is set. Its own thread.
class Counter {
 public:
  explicit Counter(log::Log& log) : _consumer(log.consumer("fleettwin.bench")) {
    _consumer->subscribe({t::kTelemetryRaw});
    _thread = std::thread([this] { run(); });
  }
  ~Counter() { stop(); }
  void stop() {
    _stop = true;
    if (_thread.joinable()) _thread.join();
  }
  int64_t distinct() const { return _distinct.load(); }
  std::atomic<bool> measure{false};
  core::Histogram latency;

 private:
  void run() {
    codec::TelemetryDecoder decoder;
    core::Telemetry tel;
    codec::DecodeError error;
    while (!_stop) {
      const auto batch = _consumer->poll(5000, std::chrono::milliseconds(100));
      if (!batch.empty()) _consumer->commit(log::next_offsets(batch));  // the inbox trims what was counted
      for (const auto& r : batch) {
        if (!decoder.decode(r.value, tel, error) || tel.seq <= 0) continue;
        auto& seen = _seen[tel.car];
        if (seen.size() <= static_cast<std::size_t>(tel.seq))
          seen.resize(static_cast<std::size_t>(tel.seq) + 16);
        if (!seen[static_cast<std::size_t>(tel.seq)]) {
          seen[static_cast<std::size_t>(tel.seq)] = true;
          ++_distinct;
        }
        if (measure) latency.record_us(std::max<int64_t>(0, r.timestamp_ms - tel.ts) * 1000);
      }
    }
    _consumer->close();
  }
  std::unique_ptr<log::Consumer> _consumer;
  std::unordered_map<std::string, std::vector<bool>> _seen;
  std::atomic<int64_t> _distinct{0};
  std::atomic<bool> _stop{false};
  std::thread _thread;
};

}  // namespace

std::string MqttBenchResult::to_json() const {
  std::ostringstream o;
  o << "{\"cars\":" << cars << ",\"shards\":" << shards << ",\"connections\":" << connections
    << ",\"ramp_s\":" << ramp_s << ",\"connections_per_s\":" << connections_per_s
    << ",\"msgs_per_s\":" << msgs_per_s << ",\"published\":" << published << ",\"received\":" << received
    << ",\"lost\":" << lost << ",\"p50_latency_ms\":" << p50_latency_ms
    << ",\"p99_latency_ms\":" << p99_latency_ms << ",\"sim_kb_per_connection\":" << sim_kb_per_connection
    << ",\"broker_kb_per_connection\":" << broker_kb_per_connection << ",\"peak_rss_mb\":" << peak_rss_mb
    << ",\"sim_rss_mb\":" << sim_rss_mb << ",\"broker_rss_mb\":" << broker_rss_mb
    << ",\"bridge_alone_messages\":" << bridge_alone_messages
    << ",\"bridge_alone_msgs_per_s\":" << bridge_alone_msgs_per_s
    << ",\"bridge_msgs_per_core_s\":" << bridge_msgs_per_core_s << "}";
  return o.str();
}

MqttBenchResult run_mqtt_bench(Config config, int64_t seconds, const std::atomic<int>& stop_signals) {
  MqttBenchResult res;
  res.cars = config.get(keys::sim_cars);
  // One broker per ~15,000 cars (20,000 open files per process), at least what mqtt.shards asks for.
  res.shards = std::max<int64_t>(config.get(keys::mqtt_shards), (res.cars + 14999) / 15000);
  const auto dir =
      std::filesystem::temp_directory_path() / ("fleettwin-bench-mqtt-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  LocalBrokers brokers(static_cast<int>(res.shards), dir.string(), config.get(keys::mqtt_max_message_bytes));
  int64_t broker_rss_before = 0;
  for (auto pid : brokers.pids()) broker_rss_before += sim::rss_kb(pid);

  log::TopicConfig tc;
  tc.capacity = 1 << 20;
  log::MemoryLog log(tc);
  for (const char* topic : {t::kTelemetryRaw, t::kCommands, t::kCommandAcks}) log.create_topic(topic, tc);
  core::Metrics metrics;
  core::WallClock clock;
  auto bridge_opts = bridge_options(config, brokers.addresses());
  bridge_opts.client_id = "fleettwin-bench-bridge";
  bridge_opts.deliver_commands = false;
  // As `up --mqtt` does (mqtt.durable_ack): PUBACKs wait for the inbox on disk, trimmed once counted.
  std::unique_ptr<EdgeInbox> inbox;
  if (config.get(keys::mqtt_durable_ack)) {
    inbox = std::make_unique<EdgeInbox>(
        EdgeInbox::Options{.path = (dir / "inbox.sqlite").string(), .process_group = "fleettwin.bench"}, log,
        metrics);
    inbox->start_trimming();
    bridge_opts.producer = [p = inbox.get()] { return p->producer(); };
  }
  auto bridge = std::make_unique<stages::Bridge>(bridge_opts, log, metrics, clock);
  bridge->start();
  auto counter = std::make_unique<Counter>(log);

  // Phase 1: the fleet on its own connections, for `seconds` of real time.
  config.set(keys::sim_duration, std::to_string(seconds) + "s", "bench");
  config.set(keys::mqtt_brokers, "", "bench");
  auto options = mqtt_fleet_options(config, fleet_config(config), brokers.addresses());
  options.fleet.failure_rate = 0;
  const auto args = sim_worker_args(config, brokers.addresses());
  std::atomic<int> stop_sim{0};
  std::mutex mu;
  sim::MqttFleetStats last;
  std::atomic<bool> sim_done{false};
  const auto started = Clock::now();
  std::thread sim([&] {
    try {
      sim::run_mqtt_fleet_processes(options,
                                    static_cast<std::size_t>(config.get(keys::mqtt_cars_per_process)), args,
                                    stop_sim, [&](const sim::MqttFleetStats& s) {
                                      std::lock_guard lock(mu);
                                      last = s;
                                    });
    } catch (const std::exception& e) {
      spdlog::error("bench mqtt: simulator: {}", e.what());
    }
    sim_done = true;
  });
  const bool tty = isatty(STDERR_FILENO);
  Clock::time_point ramp_end{};
  int64_t received_at_ramp = 0;
  int64_t prev = 0;
  int64_t sim_rss_peak = 0;
  while (!sim_done) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (stop_signals.load() > 0) stop_sim = 1;
    sim::MqttFleetStats s;
    {
      std::lock_guard lock(mu);
      s = last;
    }
    sim_rss_peak = std::max(sim_rss_peak, s.rss_kb);
    const int64_t got = counter->distinct();
    if (ramp_end == Clock::time_point{} && s.connected >= res.cars) {
      ramp_end = Clock::now();
      received_at_ramp = got;
      res.ramp_s = std::chrono::duration<double>(ramp_end - started).count();
      res.connections = s.connected;
      counter->measure = true;
      int64_t broker_rss = 0;
      for (auto pid : brokers.pids()) broker_rss += sim::rss_kb(pid);
      res.broker_rss_mb = static_cast<double>(broker_rss) / 1024.0;
      res.broker_kb_per_connection = static_cast<double>(broker_rss - broker_rss_before) /
                                     static_cast<double>(std::max<int64_t>(1, s.connected));
    }
    std::fprintf(
        stderr,
        "%s[%.0fs] connected %lld/%lld | %lld msg/s into the log | published %lld | in the log %lld | acks "
        "pending %lld | reconnects %lld%s",
        tty ? "\r\033[K" : "", std::chrono::duration<double>(Clock::now() - started).count(),
        (long long)s.connected, (long long)res.cars, (long long)(got - prev), (long long)s.published,
        (long long)got, (long long)s.pending, (long long)s.reconnects, tty ? "" : "\n");
    prev = got;
  }
  sim.join();
  const auto sim_end = Clock::now();
  {
    std::lock_guard lock(mu);
    res.published = last.published;
  }
  // Everything the brokers acknowledged reaches the log (up to a minute for the tail).
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (counter->distinct() < res.published && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  res.received = counter->distinct();
  res.lost = res.published - res.received;
  if (ramp_end != Clock::time_point{}) {
    res.connections_per_s = static_cast<double>(res.cars) / std::max(0.001, res.ramp_s);
    const double window = std::chrono::duration<double>(sim_end - ramp_end).count();
    res.msgs_per_s = window > 0 ? static_cast<double>(res.received - received_at_ramp) / window : 0;
  }
  res.p50_latency_ms = static_cast<double>(counter->latency.quantile_us(0.50)) / 1000.0;
  res.p99_latency_ms = static_cast<double>(counter->latency.quantile_us(0.99)) / 1000.0;
  res.sim_rss_mb = static_cast<double>(sim_rss_peak) / 1024.0;
  res.sim_kb_per_connection =
      static_cast<double>(sim_rss_peak) / static_cast<double>(std::max<int64_t>(1, res.cars));
  std::fprintf(stderr, "\nbench mqtt: phase 1 done: %lld published, %lld in the log, lost %lld\n",
               (long long)res.published, (long long)res.received, (long long)res.lost);

  // Phase 2: the bridge alone. While it is away its sessions keep a backlog; then it drains it, and nothing
  // else runs in this process (the counter is gone: the log keeps what nobody reads by retention).
  counter.reset();
  bridge->request_stop();
  bridge->join();
  bridge.reset();
  if (stop_signals.load() == 0) {
    sim::MqttFleetOptions burst = options;
    burst.fleet.cars = 1000;
    burst.fleet.shard = 0;
    burst.fleet.shards = 1;
    burst.fleet.id_prefix = "burst-";
    burst.fleet.interval_ms = 10;
    burst.fleet.duration_ms = 5000;
    burst.fleet.start_ms = clock.now_ms();
    burst.ground_truth_path.clear();
    std::atomic<bool> stop{false};
    sim::MqttFleetStats b;
    std::fprintf(stderr, "bench mqtt: phase 2: 1,000 cars publish a backlog while the bridge is away...\n");
    sim::run_mqtt_fleet(burst, stop, [&](const sim::MqttFleetStats& s) { b = s; });
    res.bridge_alone_messages = b.published;
    auto& forwarded = metrics.counter(core::metric::kBridgeTelemetry);
    const int64_t before = forwarded.value();
    const double cpu0 = core::process_cpu_seconds();
    const auto t0 = Clock::now();
    stages::Bridge alone(bridge_opts, log, metrics, clock);
    alone.start();
    const auto drain_deadline = Clock::now() + std::chrono::seconds(300);
    while (forwarded.value() - before < b.published && Clock::now() < drain_deadline &&
           stop_signals.load() == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = core::process_cpu_seconds() - cpu0;
    const int64_t drained = forwarded.value() - before;
    alone.request_stop();
    alone.join();
    res.bridge_alone_msgs_per_s = static_cast<double>(drained) / std::max(0.001, secs);
    res.bridge_msgs_per_core_s = static_cast<double>(drained) / std::max(0.001, cpu);
    std::fprintf(stderr, "bench mqtt: phase 2: bridge drained %lld of %lld in %.1f s using %.2f CPU s\n",
                 (long long)drained, (long long)b.published, secs, cpu);
  }
  res.peak_rss_mb = core::peak_rss_mb();
  std::filesystem::remove_all(dir);
  return res;
}

}  // namespace fleettwin::app
