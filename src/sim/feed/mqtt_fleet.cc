#include "sim/feed/mqtt_fleet.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "codec/json.h"
#include "core/clock.h"
#include "mqtt/pool.h"
#include "sim/failure.h"
#include "sim/feed/car_commands.h"

namespace fleettwin::sim {

namespace {

// Appends whole lines with one write(2) on an O_APPEND descriptor, so worker processes can share one file.
class AppendFile {
 public:
  explicit AppendFile(const std::string& path) {
    if (path.empty()) return;
    _fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (_fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  }
  ~AppendFile() {
    if (_fd >= 0) ::close(_fd);
  }
  void write(const std::string& text) {
    if (_fd >= 0 && !text.empty() && ::write(_fd, text.data(), text.size()) < 0)
      spdlog::warn("ground truth: write failed: {}", std::strerror(errno));
  }

 private:
  int _fd = -1;
};

}  // namespace

int64_t rss_kb(int pid) {
  const std::string path = pid > 0 ? "/proc/" + std::to_string(pid) + "/statm" : "/proc/self/statm";
  std::ifstream in(path);
  int64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

std::string MqttFleetStats::to_line() const {
  std::ostringstream o;
  o << "stats cars=" << cars << " connected=" << connected << " published=" << published << " acked=" << acked
    << " pending=" << pending << " reconnects=" << reconnects << " unrouted=" << unrouted
    << " dropped=" << dropped << " commands=" << commands << " answers=" << answers
    << " failures=" << failures << " rss_kb=" << rss_kb << " done=" << (done ? 1 : 0);
  return o.str();
}

std::optional<MqttFleetStats> MqttFleetStats::from_line(const std::string& line) {
  if (line.rfind("stats ", 0) != 0) return std::nullopt;
  MqttFleetStats s;
  std::istringstream in(line.substr(6));
  std::string kv;
  while (in >> kv) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) return std::nullopt;
    const std::string k = kv.substr(0, eq);
    int64_t v = 0;
    try {
      v = std::stoll(kv.substr(eq + 1));
    } catch (...) {
      return std::nullopt;
    }
    if (k == "cars") s.cars = v;
    if (k == "connected") s.connected = v;
    if (k == "published") s.published = v;
    if (k == "acked") s.acked = v;
    if (k == "pending") s.pending = v;
    if (k == "reconnects") s.reconnects = v;
    if (k == "unrouted") s.unrouted = v;
    if (k == "dropped") s.dropped = v;
    if (k == "commands") s.commands = v;
    if (k == "answers") s.answers = v;
    if (k == "failures") s.failures = v;
    if (k == "rss_kb") s.rss_kb = v;
    if (k == "done") s.done = v != 0;
  }
  return s;
}

MqttFleetStats& MqttFleetStats::operator+=(const MqttFleetStats& o) {
  cars += o.cars;
  connected += o.connected;
  published += o.published;
  acked += o.acked;
  pending += o.pending;
  reconnects += o.reconnects;
  unrouted += o.unrouted;
  dropped += o.dropped;
  commands += o.commands;
  answers += o.answers;
  failures += o.failures;
  rss_kb += o.rss_kb;
  done = done && o.done;
  return *this;
}

namespace {

// One car's connection: its own client id and session (commands wait in it while the car is away), its
// identity (certificate or password) when the fleet has credentials, and its own commands topic.
mqtt::ClientOptions car_client_options(const MqttFleetOptions& options, const std::string& id,
                                       const mqtt::BrokerAddress& b) {
  mqtt::ClientOptions o;
  o.host = b.host;
  o.port = b.port;
  o.connect.version = options.version;
  o.connect.client_id = id;
  o.connect.clean_start = false;  // commands sent while the car is away wait in its session
  o.connect.session_expiry_s = 7 * 24 * 3600;
  o.connect.keepalive_s = 120;
  o.tls = options.tls;
  if (options.credentials && options.credentials->certificates()) {
    o.tls = options.credentials->car_tls(id, options.tls);  // the broker takes the user name from the CN
  } else if (options.credentials) {
    o.connect.username = id;
    o.connect.password = options.credentials->car_password(id);
  }
  o.subscriptions = {{"fleet/" + id + "/commands", 1}};
  o.max_packet_size = 64 << 10;
  o.max_write_buffer = 256 << 10;
  o.max_outgoing = 64;  // ~10 minutes of telemetry at the default interval
  // MQTT 5 tells a car when nobody got its message (a broker restarted and the bridges have not subscribed
  // again yet: mosquitto does not keep shared subscriptions across a restart); a careful car sends it
  // again.
  o.resend_unrouted = std::chrono::seconds(1);
  return o;
}

}  // namespace

void run_mqtt_fleet(const MqttFleetOptions& options, const std::atomic<bool>& stop,
                    const std::function<void(const MqttFleetStats&)>& report) {
  if (options.brokers.empty()) throw std::invalid_argument("sim --mqtt: no brokers");
  sim::Fleet fleet(options.fleet);
  // The messages under the fleet's catalog's names (sim.catalog).
  const codec::TelemetryEncoder encoder(options.fleet.catalog ? options.fleet.catalog : catalog::builtin());
  mqtt::Pool pool(mqtt::PoolOptions{.max_connecting = options.max_connecting,
                                    .seed = options.fleet.seed * 1000003 + options.fleet.shard});
  std::vector<int32_t> client_of(fleet.size(), -1);
  std::vector<uint32_t> car_of;
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    if (!fleet.simulates(i)) continue;
    const std::string& id = fleet.car_id(i);
    auto o = car_client_options(options, id, options.brokers[i % options.brokers.size()]);
    client_of[i] = static_cast<int32_t>(pool.add(std::move(o)));
    car_of.push_back(static_cast<uint32_t>(i));
  }

  MqttFleetStats st;
  st.cars = static_cast<int64_t>(car_of.size());

  CarCommands commands(fleet);
  pool.on_message([&](mqtt::Pool::Index ci, std::string_view, std::string_view payload, std::uint8_t qos,
                      std::uint16_t packet_id) {
    const uint32_t i = car_of[ci];
    const auto ack = commands.obey(i, payload, core::wall_clock_ms());
    st.commands = commands.received();
    // The ack is published before the command's PUBACK: if the car dies in between, the broker redelivers the
    // command and the car answers again (commands set settings, so doing one twice changes nothing).
    if (pool.publish(ci, "fleet/" + fleet.car_id(i) + "/acks", codec::command_ack_to_json(ack), 1))
      ++st.answers;
    if (qos > 0) pool.ack(ci, packet_id);
  });

  AppendFile ground_truth(options.ground_truth_path);
  auto write_failures = [&] {
    auto failures = fleet.take_failures();
    if (failures.empty()) return;
    st.failures += static_cast<int64_t>(failures.size());
    std::string text;
    for (const auto& g : failures) text += sim::to_json_line(g) + "\n";
    ground_truth.write(text);
  };

  core::Telemetry t;
  std::string json, topic;
  int64_t n = 0;
  auto last_report = std::chrono::steady_clock::now();
  auto fill_stats = [&] {
    const auto ps = pool.stats();
    st.connected = static_cast<int64_t>(ps.connected);
    st.acked = static_cast<int64_t>(ps.pubacks);
    st.pending = static_cast<int64_t>(ps.outgoing);
    st.reconnects = static_cast<int64_t>(ps.reconnects);
    st.unrouted = static_cast<int64_t>(ps.unrouted);
    st.rss_kb = rss_kb();
  };
  bool finished = false;
  auto finished_at = std::chrono::steady_clock::now();
  while (!stop) {
    const int64_t now = core::wall_clock_ms();
    while (!finished && fleet.next_due_ms() <= now) {
      if (!fleet.next(t)) break;
      const auto i = fleet.car_index(t.car);
      json.clear();
      encoder.encode(t, json);
      topic.assign("fleet/").append(t.car).append("/telemetry");
      if (i && client_of[*i] >= 0 &&
          pool.publish(static_cast<mqtt::Pool::Index>(client_of[*i]), topic, json, options.qos))
        ++st.published;
      else
        ++st.dropped;
      if ((++n & 1023) == 0) write_failures();
    }
    if (!finished && fleet.next_due_ms() == sim::Fleet::kNoMoreMessages) {
      finished = true;
      finished_at = std::chrono::steady_clock::now();
      write_failures();
    }
    // After the last message: wait for the brokers' acknowledgements (up to a minute), then leave.
    if (finished && (pool.stats().outgoing == 0 ||
                     std::chrono::steady_clock::now() - finished_at > std::chrono::seconds(60)))
      break;
    const int64_t due = fleet.next_due_ms();
    const auto wait = std::chrono::milliseconds(std::clamp<int64_t>(due - core::wall_clock_ms(), 0, 50));
    pool.run_once(wait);
    if (std::chrono::steady_clock::now() - last_report >= std::chrono::seconds(1)) {
      last_report = std::chrono::steady_clock::now();
      fill_stats();
      if (report) report(st);
    }
  }
  write_failures();
  fill_stats();
  st.done = true;
  pool.disconnect_all();
  if (report) report(st);
}

int run_mqtt_fleet_processes(const MqttFleetOptions& options, std::size_t cars_per_process,
                             const std::vector<std::string>& worker_args,
                             const std::atomic<int>& stop_signals,
                             const std::function<void(const MqttFleetStats&)>& report) {
  const std::size_t cars = options.fleet.cars;
  const std::size_t workers = std::max<std::size_t>(1, (cars + cars_per_process - 1) / cars_per_process);
  if (workers == 1 || options.fleet.shards > 1) {
    std::atomic<bool> stop{false};
    std::thread watcher([&] {
      while (!stop) {
        if (stop_signals.load() > 0) stop = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    try {
      run_mqtt_fleet(options, stop, report);
    } catch (...) {
      stop = true;
      watcher.join();
      throw;
    }
    stop = true;
    watcher.join();
    return 0;
  }
  spdlog::info("sim: {} cars over {} worker processes ({} cars each at most: 20,000 open files per process)",
               cars, workers, cars_per_process);
  struct Worker {
    pid_t pid;
    int fd;
    std::string buf;
    MqttFleetStats last;
    bool open = true;
  };
  std::vector<Worker> ws;
  for (std::size_t w = 0; w < workers; ++w) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
    std::vector<std::string> args = worker_args;
    args.insert(args.end(),
                {"--shard", std::to_string(w), "--shards", std::to_string(workers), "--worker-stats"});
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
    if (pid == 0) {
      ::dup2(p[1], STDOUT_FILENO);
      std::vector<char*> argv;
      std::string self = "/proc/self/exe";
      argv.push_back(self.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::_Exit(127);
    }
    ::close(p[1]);
    ws.push_back({pid, p[0], {}, {}, true});
  }
  bool signalled = false;
  auto last_report = std::chrono::steady_clock::now();
  for (;;) {
    if (stop_signals.load() > 0 && !signalled) {
      for (auto& w : ws) ::kill(w.pid, SIGTERM);
      signalled = true;
    }
    std::vector<pollfd> fds;
    for (auto& w : ws)
      if (w.open) fds.push_back({w.fd, POLLIN, 0});
    if (fds.empty()) break;
    ::poll(fds.data(), fds.size(), 200);
    for (auto& w : ws) {
      if (!w.open) continue;
      char buf[4096];
      pollfd one{w.fd, POLLIN, 0};
      if (::poll(&one, 1, 0) <= 0) continue;
      const ssize_t n = ::read(w.fd, buf, sizeof buf);
      if (n <= 0) {
        w.open = false;
        ::close(w.fd);
        continue;
      }
      w.buf.append(buf, static_cast<std::size_t>(n));
      for (auto nl = w.buf.find('\n'); nl != std::string::npos; nl = w.buf.find('\n')) {
        if (auto s = MqttFleetStats::from_line(w.buf.substr(0, nl))) w.last = *s;
        w.buf.erase(0, nl + 1);
      }
    }
    if (std::chrono::steady_clock::now() - last_report >= std::chrono::seconds(1)) {
      last_report = std::chrono::steady_clock::now();
      MqttFleetStats sum;
      sum.done = true;
      for (auto& w : ws) sum += w.last;
      if (report) report(sum);
    }
  }
  int rc = 0;
  MqttFleetStats sum;
  sum.done = true;
  for (auto& w : ws) {
    int status = 0;
    ::waitpid(w.pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
    sum += w.last;
  }
  if (report) report(sum);
  if (rc != 0) spdlog::error("sim: a worker process failed");
  return rc;
}

}  // namespace fleettwin::sim
