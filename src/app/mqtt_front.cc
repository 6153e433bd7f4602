#include "app/mqtt_front.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/api_runtime.h"
#include "app/log_factory.h"
#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/topics.h"
#include "log/kafka/kafka_log.h"
#include "stages/dead_letters.h"
#include "stages/uplink/uplink_capture.h"

namespace fleettwin::app {

using config::Config;
using config::ConfigError;
using config::parse_host_port;
namespace keys = config::keys;

std::vector<mqtt::BrokerAddress> parse_brokers(const std::string& list, const std::string& what) {
  std::vector<mqtt::BrokerAddress> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    auto [host, port] = parse_host_port(item, what);
    // NOLINTNEXTLINE(performance-inefficient-string-concatenation): once, on the way out of the loop
    if (port <= 0) throw ConfigError(what + " '" + item + "': a broker needs a port above 0");
    out.push_back({host, static_cast<std::uint16_t>(port)});
  }
  if (out.empty()) throw ConfigError(what + ": expected HOST:PORT[,HOST:PORT...]");
  return out;
}

namespace {

mqtt::Version version_of(const Config& c) {
  const auto v = c.get(keys::mqtt_version);
  if (v == "5") return mqtt::Version::kV5;
  if (v == "3.1.1" || v == "311") return mqtt::Version::kV311;
  throw ConfigError("mqtt.version '" + v + "': expected 5 or 3.1.1");
}

std::optional<mqtt::Credentials> credentials_of(const Config& c) {
  const auto dir = c.get(keys::mqtt_credentials);
  if (dir.empty()) return std::nullopt;
  try {
    return mqtt::Credentials::load(dir);
  } catch (const std::exception& e) {
    throw ConfigError(std::string("--credentials: ") + e.what());
  }
}

bool port_open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// mosquitto started as root switches to the user "mosquitto", which cannot read our credentials (0600 keys)
/// nor write our log: naming the current user keeps it as it is (the option is ignored when not root).
std::string run_as_us() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw && pw->pw_name ? std::string("user ") + pw->pw_name + "\n" : std::string();
}

}  // namespace

// A free loopback port: bind to 0 and read it back. The broker binds it moments later; a race with another
// process is possible but harmless (the broker fails to start and we say so).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  if (port <= 0) throw std::runtime_error("no free loopback port");
  return port;
}

stages::BridgeOptions bridge_options(const Config& c, std::vector<mqtt::BrokerAddress> brokers) {
  stages::BridgeOptions o;
  o.brokers = std::move(brokers);
  o.client_id = c.get(keys::mqtt_client_id);
  o.version = version_of(c);
  o.receive_maximum = static_cast<std::uint16_t>(c.get(keys::mqtt_receive_maximum));
  o.tls.ca_file = c.get(keys::mqtt_tls_ca);
  o.tls.cert_file = c.get(keys::mqtt_tls_cert);
  o.tls.key_file = c.get(keys::mqtt_tls_key);
  if (auto cred = credentials_of(c)) {
    if (cred->certificates()) {
      o.tls = cred->bridge_tls(o.tls);  // its identity is its certificate's CN, fleettwin-bridge
    } else {
      o.username = mqtt::kBridgeUser;
      o.password = cred->bridge_password;
    }
    // Names no car can guess. A car connecting under a bridge client id would take over the bridge's session;
    // a car subscribing to the bridge's shared subscription would get its turn at the bridge's messages and
    // lose them (mosquitto's ACL file checks reads at delivery, not subscriptions: the message is dropped).
    const auto tag = cred->bridge_tag();
    o.client_id += "-" + tag;
    o.share_group += "-" + tag;
  }
  o.limits.max_message_bytes = static_cast<std::size_t>(c.get(keys::mqtt_max_message_bytes));
  o.limits.rate.per_second = c.get(keys::mqtt_rate_limit);
  o.limits.rate.burst = static_cast<double>(c.get(keys::mqtt_rate_burst));
  o.limits.rate.max_cars = static_cast<std::size_t>(c.get(keys::mqtt_rate_cars));
  return o;
}

sim::FleetConfig fleet_config(const Config& c) {
  sim::FleetConfig f;
  f.cars = static_cast<std::size_t>(c.get(keys::sim_cars));
  // `sim --mqtt` for one site of several (issue 18's tests): its cars' ids apart from the other sites'.
  f.id_prefix = c.get(keys::sim_id_prefix);
  f.interval_ms = c.get(keys::sim_interval).count();
  f.seed = static_cast<uint64_t>(c.get(keys::sim_seed));
  f.failure_rate = c.get(keys::sim_failure_rate);
  f.ramp_ms = c.get(keys::sim_failure_ramp).count();
  f.duration_ms = c.get(keys::sim_duration).count();
  f.start_ms = core::wall_clock_ms() / 1000 * 1000;
  apply_sim_catalog(c, f);
  if (const auto problem = sim::validate(f); !problem.empty()) throw ConfigError(problem);
  return f;
}

void apply_sim_catalog(const Config& c, sim::FleetConfig& fleet) {
  fleet.upgraded_share = c.get(keys::sim_upgraded_share);
  const auto file = c.get(keys::sim_catalog);
  if (file.empty()) return;
  try {
    fleet.catalog = catalog::load_or_builtin(file);
  } catch (const catalog::CatalogError& e) {
    throw ConfigError(std::string("sim.catalog: ") + e.what());
  }
}

sim::MqttFleetOptions mqtt_fleet_options(const Config& c, sim::FleetConfig fleet,
                                         std::vector<mqtt::BrokerAddress> brokers) {
  sim::MqttFleetOptions o;
  o.fleet = std::move(fleet);
  o.fleet.shard = static_cast<std::size_t>(c.get(keys::sim_shard));
  o.fleet.shards = static_cast<std::size_t>(c.get(keys::sim_shards));
  if (o.fleet.shard >= o.fleet.shards) throw ConfigError("--shard must be below --shards");
  o.brokers = std::move(brokers);
  o.qos = static_cast<std::uint8_t>(c.get(keys::mqtt_qos));
  o.version = version_of(c);
  o.credentials = credentials_of(c);
  o.tls.ca_file = c.get(keys::mqtt_tls_ca);
  o.tls.cert_file = c.get(keys::mqtt_tls_cert);
  o.tls.key_file = c.get(keys::mqtt_tls_key);
  return o;
}

std::vector<std::string> sim_worker_args(const Config& c, const std::vector<mqtt::BrokerAddress>& brokers) {
  std::string list;
  for (const auto& b : brokers) list += (list.empty() ? "" : ",") + b.host + ":" + std::to_string(b.port);
  std::vector<std::string> args = {"sim", "--mqtt", list};
  for (const auto& [flag, key] : std::vector<std::pair<std::string, const config::KeySpec*>>{
           {"--cars", &keys::sim_cars},
           {"--interval", &keys::sim_interval},
           {"--duration", &keys::sim_duration},
           {"--seed", &keys::sim_seed},
           {"--failure-rate", &keys::sim_failure_rate},
           {"--failure-ramp", &keys::sim_failure_ramp},
           {"--sim-catalog", &keys::sim_catalog},
           {"--upgraded-share", &keys::sim_upgraded_share},
           {"--qos", &keys::mqtt_qos},
           {"--mqtt-version", &keys::mqtt_version},
           {"--credentials", &keys::mqtt_credentials},
           {"--tls-ca", &keys::mqtt_tls_ca},
           {"--tls-cert", &keys::mqtt_tls_cert},
           {"--tls-key", &keys::mqtt_tls_key},
           {"--ground-truth", &keys::ground_truth},
           {"--log-level", &keys::log_level}}) {
    const auto& v = c.text(*key);
    if (!v.empty()) args.insert(args.end(), {flag, v});
  }
  return args;
}

int run_bridge(const Config& config, const std::atomic<int>& stop_signals) {
  const auto brokers = config.get(keys::kafka_brokers);
  if (brokers.empty())
    throw ConfigError(
        "`fleettwin bridge` writes to Kafka: give --kafka BROKERS (or run `fleettwin up --mqtt`)");
  if (config.get(keys::mqtt_brokers).empty())
    throw ConfigError("`fleettwin bridge` needs --mqtt HOST:PORT[,...]");
  log::KafkaLog log(kafka_settings(config, brokers));
  const log::TopicConfig tc = topic_config(config);
  // The bridge writes the DLQ of each topic it writes (too large, over a car's rate, refused by the log).
  for (const std::string& t :
       {std::string(core::topics::kTelemetryRaw), std::string(core::topics::kCommands),
        std::string(core::topics::kCommandAcks), std::string(core::topics::kTelemetryDlq),
        stages::dlq_of(core::topics::kCommandAcks)})
    log.create_topic(t, tc);
  core::Metrics metrics;
  core::WallClock clock;
  auto options = bridge_options(config, parse_brokers(config.get(keys::mqtt_brokers), "--mqtt"));
  if (!config.get(keys::group).empty()) options.command_group = config.get(keys::group);
  stages::Bridge bridge(options, log, metrics, clock);
  bridge.start();
  const auto metrics_server = start_metrics_server(config, metrics);
  spdlog::info("bridge: {} broker(s) -> Kafka {} (client id {}, receive maximum {})", options.brokers.size(),
               brokers, options.client_id, options.receive_maximum);
  const bool tty = isatty(STDERR_FILENO);
  int64_t last = 0;
  auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (stop_signals.load() == 0 && bridge.running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next) continue;
    next += std::chrono::seconds(1);
    const int64_t f = bridge.forwarded();
    std::fprintf(stderr, "%sbridge: connections %lld | %lld msg/s | forwarded %lld%s", tty ? "\r\033[K" : "",
                 (long long)bridge.connected(), (long long)(f - last), (long long)f, tty ? "" : "\n");
    last = f;
  }
  bridge.request_stop();
  bridge.join();
  std::fprintf(stderr, "\nbridge stopped: %lld messages forwarded\n", (long long)bridge.forwarded());
  if (!bridge.error().empty()) {
    spdlog::error("{}", bridge.error());
    return 1;
  }
  return 0;
}

void MqttFront::set_error(const std::string& e) {
  std::lock_guard lock(_mu);
  if (_error.empty()) _error = e;
}

std::string MqttFront::error() const {
  std::lock_guard lock(_mu);
  std::string e = _error;
  if (e.empty() && _bridge) e = _bridge->error();
  return e;
}

void MqttFront::start_bridge(const Config& config, log::Log& log, core::Metrics& metrics,
                             const core::Clock& clock, const std::string& dir) {
  if (config.get(keys::mqtt_brokers) == "local") {
    // With --credentials the local brokers authenticate as production ones do, not just the cars' side.
    _brokers =
        std::make_unique<LocalBrokers>(static_cast<int>(config.get(keys::mqtt_shards)), dir,
                                       config.get(keys::mqtt_max_message_bytes), credentials_of(config));
    _addresses = _brokers->addresses();
  } else {
    _addresses = parse_brokers(config.get(keys::mqtt_brokers), "--mqtt");
  }
  auto options = bridge_options(config, _addresses);
  // Kafka acknowledges with acks=all, which is durable already; the embedded log needs the inbox.
  if (!log.durable() && config.get(keys::mqtt_durable_ack)) {
    std::filesystem::create_directories(dir);
    EdgeInbox::Options inbox{.path = (std::filesystem::path(dir) / "inbox.sqlite").string()};
    // The uplink's capture stage reads the answers too (app/uplink.h): an answer central has not got stays.
    if (!config.get(keys::uplink_brokers).empty())
      inbox.answer_groups.push_back("fleettwin." + stages::UplinkCapture::static_descriptor().name);
    _inbox = std::make_unique<EdgeInbox>(std::move(inbox), log, metrics);
    _inbox->replay();
    _inbox->start_trimming();
    options.producer = [inbox = _inbox.get()] { return inbox->producer(); };
  }
  _bridge = std::make_unique<stages::Bridge>(std::move(options), log, metrics, clock);
  _bridge->start();
  _started = true;
}

void MqttFront::start(const Config& config, sim::FleetConfig fleet, const std::string& ground_truth,
                      log::Log& log, core::Metrics& metrics, const core::Clock& clock,
                      core::Counter& published, const std::string& dir) {
  start_bridge(config, log, metrics, clock, dir);
  const auto& brokers = _addresses;
  _simulating = true;
  // Real time from now: a resumed data dir's simulated start lies in the past, and cars cannot send the past.
  fleet.start_ms = core::wall_clock_ms() / 1000 * 1000;
  auto options = mqtt_fleet_options(config, std::move(fleet), brokers);
  options.ground_truth_path = ground_truth;
  const auto per_process = static_cast<std::size_t>(config.get(keys::mqtt_cars_per_process));
  auto args = sim_worker_args(config, brokers);
  _sim_running = true;
  _sim = std::thread([this, options, per_process, args, &published] {
    try {
      int64_t last = 0;
      const int rc = sim::run_mqtt_fleet_processes(options, per_process, args, _stop_sim,
                                                   [&](const sim::MqttFleetStats& s) {
                                                     published.add(s.published - last);
                                                     last = s.published;
                                                     _published = s.published;
                                                   });
      if (rc != 0) set_error("a simulator worker process failed");
    } catch (const std::exception& e) {
      set_error(std::string("simulator: ") + e.what());
    }
    _sim_running = false;
  });
}

bool MqttFront::stop() {
  if (!_started) return error().empty();
  _started = false;
  _stop_sim = 1;
  if (_sim.joinable()) _sim.join();
  // Real cars go on publishing: what the bridge has not acknowledged waits on the brokers for the next run.
  // Simulated cars' QoS 1 messages are on the brokers; let the bridge move them into the log before it stops.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  // A message the bridge sent to the DLQ (over a car's rate) is accounted for too. Messages from anyone else
  // on the brokers count as well (a test's malformed payloads, a real car beside the simulated ones), so
  // reaching the cars' count is not enough: the bridge must also have gone quiet, the cars' last messages
  // are not still on their way.
  const auto accounted = [&] { return _bridge->forwarded() + _bridge->diverted(); };
  constexpr auto kQuiet = std::chrono::milliseconds(500);
  int64_t seen = accounted();
  auto moved = std::chrono::steady_clock::now();
  while (_simulating && _bridge->running() && std::chrono::steady_clock::now() < deadline) {
    const int64_t now_accounted = accounted();
    const auto now = std::chrono::steady_clock::now();
    if (now_accounted != seen) {
      seen = now_accounted;
      moved = now;
    }
    if (now_accounted >= _published.load() && now - moved >= kQuiet) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (_simulating && accounted() < _published.load())
    spdlog::warn("mqtt: the bridge forwarded {} of the {} messages the cars published", _bridge->forwarded(),
                 _published.load());
  _bridge->request_stop();
  _bridge->join();
  _inbox.reset();
  _brokers.reset();
  return error().empty();
}

LocalBrokers::LocalBrokers(int shards, const std::string& dir, int64_t max_message_bytes,
                           const std::optional<mqtt::Credentials>& credentials) {
  std::filesystem::create_directories(dir);
  for (int k = 0; k < shards; ++k) {
    const int port = free_port();
    const auto conf = std::filesystem::path(dir) / ("mosquitto-" + std::to_string(k) + ".conf");
    {
      std::ofstream out(conf);
      out << "per_listener_settings false\nlistener " << port << " 127.0.0.1\n"
          << (credentials ? mqtt::broker_auth_config(*credentials) : "allow_anonymous true\n") << run_as_us()
          << "persistence false\nmax_queued_messages 1000000\nmax_inflight_messages 100\nmax_keepalive "
             "65535\n"
          // The broker refuses what the bridge would send to the DLQ as too_large (mqtt.max_message_bytes).
          << "message_size_limit " << max_message_bytes << "\n"
          << "log_dest file "
          << (std::filesystem::path(dir) / ("mosquitto-" + std::to_string(k) + ".log")).string()
          << "\nlog_type error\nlog_type warning\nconnection_messages false\n";
    }
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork for mosquitto failed");
    if (pid == 0) {
      ::execlp("mosquitto", "mosquitto", "-c", conf.c_str(), static_cast<char*>(nullptr));
      ::execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    _pids.push_back(pid);
    _addresses.push_back({"127.0.0.1", static_cast<std::uint16_t>(port)});
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid)
        throw std::runtime_error("mosquitto exited at start (installed? see " + dir + ")");
      up = port_open(port);
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!up) throw std::runtime_error("mosquitto did not listen on 127.0.0.1:" + std::to_string(port));
    spdlog::info("mqtt: local broker on 127.0.0.1:{}", port);
  }
}

LocalBrokers::~LocalBrokers() {
  for (pid_t p : _pids) ::kill(p, SIGTERM);
  for (pid_t p : _pids) ::waitpid(p, nullptr, 0);
}

}  // namespace fleettwin::app
