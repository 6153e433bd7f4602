#include "app/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace fleettwin::app {

namespace {

// The one table of configuration keys. Add a key here and it is parsed, validated, documented and
// settable from YAML and the environment.
const std::vector<ConfigKey> kKeys = {
    {"data_dir",
     ConfigType::kString,
     "./fleettwin-data",
     {},
     {},
     "Directory of the embedded store (SQLite), the simulator's state and the ground truth."},
    {"log_level", ConfigType::kString, "info", {}, {}, "Log level: trace, debug, info, warn, error."},
    {"store.mongo_uri",
     ConfigType::kString,
     "",
     {},
     {},
     "MongoDB (or FerretDB) URI of the twin store, database from its path (default fleettwin); empty: "
     "SQLite in data_dir."},
    {"summary_json",
     ConfigType::kString,
     "",
     {},
     {},
     "Write the run summary (counts, exactness check, msg/s, latency, memory) as JSON to this file."},
    {"sim.cars", ConfigType::kInt, "10000", 1, 10000000, "Number of simulated cars."},
    {"sim.interval", ConfigType::kDuration, "10s", 1, 86400000, "Each car sends one message per interval."},
    {"sim.duration",
     ConfigType::kDuration,
     "0",
     0,
     {},
     "Simulated time to run (0: until stopped). With --fast this is simulated, not wall, time."},
    {"sim.fast",
     ConfigType::kBool,
     "false",
     {},
     {},
     "Run the simulated clock as fast as the pipeline accepts instead of in real time."},
    {"sim.seed", ConfigType::kInt, "1", 0, 9.0e15, "Seed of the simulator; same seed, same fleet."},
    {"sim.shard", ConfigType::kInt, "0", 0, 100000,
     "This simulator process drives cars with index % sim.shards == sim.shard (set for worker processes)."},
    {"sim.shards", ConfigType::kInt, "1", 1, 100000,
     "Simulator processes the fleet is split over (see sim.shard)."},
    {"mqtt.brokers",
     ConfigType::kString,
     "",
     {},
     {},
     "MQTT brokers HOST:PORT[,...]: `sim --mqtt` connects car i to broker i % n, `bridge` reads from all; "
     "`up --mqtt` "
     "without addresses starts mqtt.shards local mosquitto brokers."},
    {"mqtt.qos", ConfigType::kInt, "1", 0, 1,
     "QoS of the cars' telemetry (0: may be lost; 1: kept until acknowledged)."},
    {"mqtt.version",
     ConfigType::kString,
     "5",
     {},
     {},
     "MQTT protocol version of cars and bridge: 5 or 3.1.1."},
    {"mqtt.credentials",
     ConfigType::kString,
     "",
     {},
     {},
     "Directory written by `fleettwin sim credentials` (fleet secret, bridge password); empty: anonymous."},
    {"mqtt.receive_maximum", ConfigType::kInt, "2000", 1, 65535,
     "Unacknowledged QoS 1 messages per bridge connection: a slow log slows the cars instead of growing "
     "memory."},
    {"mqtt.client_id",
     ConfigType::kString,
     "fleettwin-bridge",
     {},
     {},
     "Bridge client id prefix; a restarted bridge must reuse it (its sessions hold what it had not "
     "acknowledged)."},
    {"mqtt.cars_per_process", ConfigType::kInt, "16000", 1, 18000,
     "Simulated cars per process (one descriptor each; 20,000 open files per process); more cars, more "
     "workers."},
    {"mqtt.shards", ConfigType::kInt, "1", 1, 64,
     "Local mosquitto brokers `up --mqtt` starts (without mqtt.brokers)."},
    {"mqtt.tls_ca",
     ConfigType::kString,
     "",
     {},
     {},
     "CA file: cars and bridge connect to the brokers with TLS and check their certificate."},
    {"mqtt.tls_cert", ConfigType::kString, "", {}, {}, "Client certificate for TLS (optional)."},
    {"mqtt.tls_key", ConfigType::kString, "", {}, {}, "Client key for TLS (optional)."},
    {"sim.failure_rate", ConfigType::kDouble, "0.02", 0, 1000,
     "Expected failures per car per simulated hour."},
    {"sim.failure_ramp",
     ConfigType::kDuration,
     "2m",
     0,
     {},
     "Simulated time a failure takes to grow from invisible to its full signature."},
    {"sim.replay",
     ConfigType::kString,
     "",
     {},
     {},
     "Replay this CSV (cardata-v1 header) instead of simulating cars."},
    {"sim.inject_invalid", ConfigType::kInt, "0", 0, 1.0e9,
     "Also publish this many malformed payloads (for DLQ demos and tests); they are not telemetry."},
    {"ground_truth",
     ConfigType::kString,
     "",
     {},
     {},
     "Ground-truth file of simulated failures (JSON lines); default <data_dir>/ground_truth.jsonl."},
    {"codec.max_payload_bytes", ConfigType::kInt, "16384", 64, 16777216,
     "Largest accepted telemetry payload; larger ones go to the DLQ as oversized."},
    {"twin.offline_after",
     ConfigType::kDuration,
     "60s",
     1,
     {},
     "A car with no message for this long (device time) is marked offline."},
    {"twin.flush_interval", ConfigType::kDuration, "1s", 0, 600000,
     "The twin stage writes each changed twin at most once per interval, and commits its input then."},
    {"log.partitions", ConfigType::kInt, "8", 1, 4096, "Partitions of each topic created by fleettwin."},
    {"log.replication", ConfigType::kInt, "1", 1, 16, "Replication factor of each topic created on Kafka."},
    {"kafka.brokers",
     ConfigType::kString,
     "",
     {},
     {},
     "Kafka bootstrap servers (HOST:PORT,...). Empty: the embedded in-memory log. Any other "
     "`kafka.<property>` "
     "key is passed to librdkafka as is (SASL, SSL, tuning)."},
    {"group",
     ConfigType::kString,
     "",
     {},
     {},
     "Consumer group of a role process (default fleettwin.<stage>); copies in one group share the "
     "partitions."},
    {"schema_registry",
     ConfigType::kString,
     "",
     {},
     {},
     "Schema registry URL (Confluent REST API). Empty in `up`: an embedded registry on registry.listen."},
    {"registry.listen",
     ConfigType::kString,
     "127.0.0.1:8081",
     {},
     {},
     "Where `up` and `fleettwin registry` serve the embedded schema registry (port 0: any free port)."},
    {"log.capacity", ConfigType::kInt, "8192", 16, 100000000,
     "Embedded log: records kept per partition; producers wait when consumers fall this far behind."},
    {"stage.max_batch", ConfigType::kInt, "5000", 1, 1000000, "Records per stage batch at most."},
    {"stage.batch_window", ConfigType::kDuration, "50ms", 0, 60000,
     "How long a stage keeps polling to fill a batch."},
    {"ml.warmup",
     ConfigType::kDuration,
     "5m",
     0,
     {},
     "`up`: the score stage trains a first model on this much event time of telemetry (0: wait for "
     "fleet.models)."},
    {"ml.architecture",
     ConfigType::kString,
     "fleettwin",
     {},
     {},
     "Autoencoder to train: fleettwin (13 signals + 8 derived features, 21-32-12-32-21) or reference "
     "(18-14-7-7-14-18)."},
    {"ml.threshold_method",
     ConfigType::kString,
     "alert_rate",
     {},
     {},
     "Threshold calibration: alert_rate (healthy held-out cars would raise ml.target_false_alerts under the "
     "hysteresis rule; extreme-value fit) or quantile (ml.quantile of held-out scores)."},
    {"ml.target_false_alerts", ConfigType::kDouble, "0.5", 1e-6, 1e6,
     "alert_rate threshold: false anomaly alerts per 1,000 car-hours the threshold aims at."},
    {"ml.quantile", ConfigType::kDouble, "0.995", 0.5, 1,
     "quantile threshold: this quantile of reconstruction scores on held-out data (cars far above it left "
     "out)."},
    {"ml.input_dropout", ConfigType::kDouble, "0.05", 0, 0.9,
     "Denoising: share of inputs hidden in each training row, so the autoencoder predicts each signal from "
     "the others rather than copying it."},
    {"ml.reconstruction_range", ConfigType::kDouble, "0", 0, 1,
     "When above 0, each input's reconstruction stays within the range this share of training cars stayed "
     "within (widened by half its width), so a value no healthy car reads is never reconstructed as normal. "
     "Off by default: it also flags healthy modes the training window did not show (see "
     "docs/benchmarks.md)."},
    {"ml.epochs", ConfigType::kInt, "30", 1, 10000,
     "Training epochs at most (early stopping may end sooner)."},
    {"ml.train_seed", ConfigType::kInt, "42", 0, 9.0e15,
     "Seed of training (held-out cars, initial weights, batch order); same history and seed, same model."},
    {"ml.learning_rate_decay", ConfigType::kDouble, "0.85", 0.01, 1,
     "Each training epoch's learning rate is this times the last one's (Adam starts at 0.001): the last "
     "epochs settle instead of jumping around the best fit, so two training runs on the same history give "
     "models with the same false-alert rate. 1: constant."},
    {"ml.max_rows", ConfigType::kInt, "400000", 100, 100000000,
     "Training samples at most this many events of the history."},
    {"ml.raise_k", ConfigType::kInt, "2", 1, 64,
     "Alert hysteresis: raise after this many anomalous events..."},
    {"ml.window_n", ConfigType::kInt, "3", 1, 64, "...among a car's last this many events."},
    {"ml.clear_m", ConfigType::kInt, "180", 1, 100000,
     "Alert hysteresis: clear after this many normal events in a row (180: 30 min at a 10 s interval)."},
    {"ml.new_symptom_settle",
     ConfigType::kDuration,
     "15m",
     0,
     {},
     "A car in alert raises another alert when a part of it (cooling, battery, drivetrain, tyres, chassis) "
     "that was normal turns anomalous; the parts an alert covers are those anomalous this long after it was "
     "raised (0: one alert per car at a time)."},
    {"ml.skip_unfamiliar",
     ConfigType::kBool,
     "true",
     {},
     {},
     "An anomalous event whose anomalous signals all read values seen in training, while another signal "
     "reads "
     "a value the training window never showed, is counted (fleettwin_score_unfamiliar_total) but raises no "
     "alert: the model is extrapolating."},
    {"ml.firmware_grace",
     ConfigType::kDuration,
     "1h",
     0,
     {},
     "Outdated-firmware rule: a car may stay below the fleet's newest version this long (a rollback alerts "
     "at once)."},
    {"ml.eval_window",
     ConfigType::kDuration,
     "30m",
     1,
     {},
     "`eval`: an alert detects a failure that began at most this long before it."},
    {"http.listen",
     ConfigType::kString,
     "127.0.0.1:8080",
     {},
     {},
     "Where `up` and `fleettwin api` serve the REST API and the dashboard (port 0: any free port; empty in "
     "`up`: no HTTP server)."},
    {"http.web_dir",
     ConfigType::kString,
     "",
     {},
     {},
     "The built dashboard (web/dist); empty: found next to the binary or in the source tree it was built "
     "from."},
    {"http.max_stream_clients", ConfigType::kInt, "256", 1, 10000,
     "Live-stream (SSE) clients served at once; each holds one HTTP worker thread."},
    {"api.tokens",
     ConfigType::kString,
     "",
     {},
     {},
     "API tokens as role:token,... (roles viewer, operator, admin). Empty: an admin token is generated and "
     "kept in <data_dir>/api-token."},
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string type_name(ConfigType t) {
  switch (t) {
    case ConfigType::kInt:
      return "int";
    case ConfigType::kDouble:
      return "number";
    case ConfigType::kBool:
      return "bool";
    case ConfigType::kString:
      return "string";
    case ConfigType::kDuration:
      return "duration";
  }
  return "?";
}

bool parse_bool(const std::string& v, bool& out) {
  const auto l = lower(v);
  if (l == "true" || l == "1" || l == "yes" || l == "on") return out = true, true;
  if (l == "false" || l == "0" || l == "no" || l == "off") return out = false, true;
  return false;
}

std::string fmt_bound(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void flatten(const YAML::Node& node, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out, const std::string& path) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      flatten(kv.second, prefix.empty() ? key : prefix + "." + key, out, path);
    }
  } else if (node.IsScalar()) {
    out.emplace_back(prefix, node.Scalar());
  } else if (!node.IsNull()) {
    throw ConfigError(path + ": key '" + prefix + "' must be a scalar value");
  }
}

}  // namespace

std::pair<std::string, int> parse_host_port(const std::string& text, const std::string& what) {
  const auto colon = text.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon + 1 < text.size()) {
    auto [ptr, ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
    if (ec != std::errc() || ptr != text.data() + text.size()) port = -1;
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535)
    throw ConfigError(what + " = '" + text + "': expected HOST:PORT, e.g. 127.0.0.1:8081");
  return {text.substr(0, colon), port};
}

int64_t parse_duration_ms(const std::string& text) {
  if (text.empty()) throw ConfigError("empty duration");
  double number = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc() || !std::isfinite(number) || number < 0)
    throw ConfigError("'" + text + "' is not a duration (e.g. 250ms, 10s, 2m, 1h)");
  const std::string unit(ptr, end);
  double factor;
  if (unit.empty() || unit == "s") {
    factor = 1000;
  } else if (unit == "ms") {
    factor = 1;
  } else if (unit == "m" || unit == "min") {
    factor = 60000;
  } else if (unit == "h") {
    factor = 3600000;
  } else if (unit == "d") {
    factor = 86400000;
  } else {
    throw ConfigError("'" + text + "': unknown duration unit '" + unit + "' (use ms, s, m, h or d)");
  }
  return static_cast<int64_t>(std::llround(number * factor));
}

Config::Config() {
  for (const auto& k : kKeys) _values[k.name] = k.default_value;
}

const std::vector<ConfigKey>& Config::keys() { return kKeys; }

const ConfigKey* Config::find_key(const std::string& name) {
  for (const auto& k : kKeys)
    if (k.name == name) return &k;
  return nullptr;
}

void Config::set(const std::string& name, const std::string& value, const std::string& origin) {
  const ConfigKey* key = find_key(name);
  if (!key && name.rfind("kafka.", 0) == 0 && name.size() > 6) {
    _passthrough[name] = value;  // librdkafka validates it when the log is created, naming the key
    return;
  }
  if (!key)
    throw ConfigError(origin + ": unknown configuration key '" + name + "' (see `fleettwin config docs`)");
  auto fail = [&](const std::string& why) {
    throw ConfigError(origin + ": " + name + " = '" + value + "': " + why);
  };
  double number = 0;
  switch (key->type) {
    case ConfigType::kInt: {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || ptr != value.data() + value.size()) fail("expected a whole number");
      number = static_cast<double>(v);
      break;
    }
    case ConfigType::kDouble: {
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (ec != std::errc() || ptr != value.data() + value.size() || !std::isfinite(number))
        fail("expected a number");
      break;
    }
    case ConfigType::kBool: {
      bool b;
      if (!parse_bool(value, b)) fail("expected true or false");
      _values[name] = b ? "true" : "false";
      return;
    }
    case ConfigType::kDuration:
      try {
        number = static_cast<double>(parse_duration_ms(value));
      } catch (const ConfigError& e) {
        fail(e.what());
      }
      break;
    case ConfigType::kString:
      _values[name] = value;
      return;
  }
  const bool dur = key->type == ConfigType::kDuration;
  if (key->min && number < *key->min) fail("below the minimum " + fmt_bound(*key->min) + (dur ? " ms" : ""));
  if (key->max && number > *key->max) fail("above the maximum " + fmt_bound(*key->max) + (dur ? " ms" : ""));
  _values[name] = value;
}

void Config::load_yaml(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot read the config file");
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": " + e.msg);
  }
  std::vector<std::pair<std::string, std::string>> flat;
  flatten(root, "", flat, path);
  for (const auto& [k, v] : flat) set(k, v, path);
}

void Config::load_env() {
  for (const auto& k : kKeys) {
    std::string env = "FLEETTWIN_";
    for (char c : k.name) env += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(c));
    if (const char* v = std::getenv(env.c_str())) set(k.name, v, "environment " + env);
  }
}

const std::string& Config::raw(const std::string& name) const {
  auto it = _values.find(name);
  if (it == _values.end()) throw ConfigError("unknown configuration key '" + name + "'");
  return it->second;
}

int64_t Config::get_int(const std::string& name) const { return std::stoll(raw(name)); }
double Config::get_double(const std::string& name) const { return std::stod(raw(name)); }
bool Config::get_bool(const std::string& name) const { return raw(name) == "true"; }
std::string Config::get_string(const std::string& name) const { return raw(name); }
int64_t Config::get_duration_ms(const std::string& name) const { return parse_duration_ms(raw(name)); }

std::string Config::docs_markdown() {
  std::string out =
      "# Configuration\n\n"
      "Generated by `fleettwin config docs` from the key table in `src/app/config.cc`; do not edit by "
      "hand.\n\n"
      "Each key is read, lowest precedence first, from its default, the YAML file given with `--config` "
      "(nesting mirrors the dots: `sim: {cars: 100}`), the environment (`FLEETTWIN_` + the key in upper case "
      "with dots as underscores, e.g. `FLEETTWIN_SIM_CARS`), and command-line flags.\n\n"
      "Durations take a unit: `250ms`, `10s`, `2m`, `1h`, `1d` (a plain number means seconds).\n\n"
      "| key | type | default | range | description |\n|---|---|---|---|---|\n";
  for (const auto& k : kKeys) {
    std::string range;
    if (k.min || k.max) {
      const std::string unit = k.type == ConfigType::kDuration ? " ms" : "";
      range = (k.min ? fmt_bound(*k.min) : "") + " .. " + (k.max ? fmt_bound(*k.max) : "") + unit;
    }
    out += "| `" + k.name + "` | " + type_name(k.type) + " | `" + k.default_value + "` | " + range + " | " +
           k.description + " |\n";
  }
  return out;
}

}  // namespace fleettwin::app
