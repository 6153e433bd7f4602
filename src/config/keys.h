#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::config {

/// Type of a configuration value.
enum class ConfigType : uint8_t { kInt, kDouble, kBool, kString, kDuration };

/// What every configuration key declares, whatever its C++ type: the untyped view that YAML and environment
/// lookup, validation and the generated docs work from. Only the typed keys below derive from it;
/// constructing one adds it to `all_keys()`, so the declarations in `keys` are the one list of keys. Keys are
/// built during static initialization and read-only afterwards, from any thread.
class KeySpec {
 public:
  KeySpec(const KeySpec&) = delete;  // all_keys() holds its address
  KeySpec& operator=(const KeySpec&) = delete;

  const std::string& name() const { return _name; }  ///< dotted, e.g. "sim.cars"
  ConfigType type() const { return _type; }
  /// The default as the text a user would give ("10s"); documented and parsed as such.
  const std::string& default_text() const { return _default_text; }
  const std::optional<double>& min() const { return _min; }  ///< numbers, and durations in ms
  const std::optional<double>& max() const { return _max; }
  const std::string& description() const { return _description; }

 protected:
  KeySpec(std::string name, ConfigType type, std::string default_text, std::optional<double> min,
          std::optional<double> max, std::string description);
  ~KeySpec() = default;

 private:
  std::string _name;
  ConfigType _type;
  std::string _default_text;
  std::optional<double> _min;
  std::optional<double> _max;
  std::string _description;
};

/// A whole-number key; `Config::get` returns int64_t.
class IntKey : public KeySpec {
 public:
  IntKey(std::string name, int64_t default_value, int64_t min, int64_t max, std::string description);
};

/// A floating-point key; `Config::get` returns double.
class DoubleKey : public KeySpec {
 public:
  DoubleKey(std::string name, double default_value, double min, double max, std::string description);
};

/// A true/false key; `Config::get` returns bool.
class BoolKey : public KeySpec {
 public:
  BoolKey(std::string name, bool default_value, std::string description);
};

/// A text key; `Config::get` returns std::string.
class StringKey : public KeySpec {
 public:
  StringKey(std::string name, std::string default_value, std::string description);
};

/// A duration key ("250ms", "10s", "2m"); `Config::get` returns std::chrono::milliseconds. The default
/// stays text so the docs show it as written ("60s", not "1m"); bounds are in ms.
class DurationKey : public KeySpec {
 public:
  DurationKey(std::string name, std::string default_text, int64_t min_ms, std::optional<int64_t> max_ms,
              std::string description);
};

/// Every key, in declaration order (the order of docs/configuration.md).
const std::vector<const KeySpec*>& all_keys();
/// The key with this dotted name, or null.
const KeySpec* find_key(std::string_view name);

/// The configuration keys. Declare a key here and it is parsed, validated, documented and settable from
/// YAML, the environment and (when a flag binds it) the command line; code reads it as
/// `config.get(keys::sim_cars)`. The order is the order of docs/configuration.md. The environment variable
/// of a key is FLEETTWIN_ + its name upper-cased with dots as underscores; in YAML its dots are nesting.
namespace keys {

inline const StringKey data_dir{
    "data_dir", "./fleettwin-data",
    "Directory of the embedded store (SQLite), the simulator's state and the ground truth."};
inline const StringKey log_level{"log_level", "info", "Log level: trace, debug, info, warn, error."};
inline const StringKey store_mongo_uri{"store.mongo_uri", "",
                                       "MongoDB (or FerretDB) URI of the twin store, database from its path "
                                       "(default fleettwin); empty: SQLite in data_dir."};
inline const StringKey store_postgres_uri{
    "store.postgres_uri", "",
    "PostgreSQL URI of the twin store (postgresql://user@host:port/database or postgres://...); empty: "
    "SQLite "
    "in data_dir. Not together with store.mongo_uri."};
inline const DurationKey store_history_retention{
    "store.history_retention", "7d", 0, std::nullopt,
    "Telemetry history is kept this long, by the event time (device ts) of each row, on every store; older "
    "rows are removed continuously by the sink (docs/architecture.md, retention). 0: kept forever."};
inline const DurationKey store_aggregates_retention{
    "store.aggregates_retention", "400d", 0, std::nullopt,
    "Window aggregates are kept this long, by window start, on every store; older windows are removed "
    "continuously by the sink (docs/architecture.md, windows over time). 0: kept forever."};
inline const DurationKey store_retention_interval{
    "store.retention_interval", "60s", 1000, 86'400'000,
    "How often the sink enforces store.history_retention and store.aggregates_retention (sooner while a "
    "backlog of old rows remains)."};
inline const StringKey summary_json{
    "summary_json", "",
    "Write the run summary (counts, exactness check, msg/s, latency, memory) as JSON to this file."};
inline const StringKey catalog_file{
    "catalog.file", "",
    "Signal catalog (YAML, docs/catalogs.md) the whole platform reads: signal names, types, units, ranges, "
    "parts. Empty: the built-in cardata-v1 catalog (deploy/catalogs/cardata-v1.yaml)."};
inline const StringKey catalog_unknown_fields{
    "catalog.unknown_fields", "drop",
    "What ingest does with a payload field the catalog does not know: drop (count it per name in /metrics, "
    "keep the message) or reject (the whole message to the DLQ with reason unknown_field)."};
inline const IntKey sim_cars{"sim.cars", 10'000, 1, 10'000'000, "Number of simulated cars."};
inline const DurationKey sim_interval{"sim.interval", "10s", 1, 86'400'000,
                                      "Each car sends one message per interval."};
inline const DurationKey sim_duration{
    "sim.duration", "0", 0, std::nullopt,
    "Simulated time to run (0: until stopped). With --fast this is simulated, not wall, time."};
inline const BoolKey sim_fast{
    "sim.fast", false, "Run the simulated clock as fast as the pipeline accepts instead of in real time."};
inline const IntKey sim_seed{"sim.seed", 1, 0, 9'000'000'000'000'000,
                             "Seed of the simulator; same seed, same fleet."};
inline const IntKey sim_shard{
    "sim.shard", 0, 0, 100'000,
    "This simulator process drives cars with index % sim.shards == sim.shard (set for worker processes)."};
inline const IntKey sim_shards{"sim.shards", 1, 1, 100'000,
                               "Simulator processes the fleet is split over (see sim.shard)."};
inline const StringKey mqtt_brokers{
    "mqtt.brokers", "",
    "MQTT brokers HOST:PORT[,...]: `sim --mqtt` connects car i to broker i % n, `bridge` reads from all; `up "
    "--mqtt` without addresses starts mqtt.shards local mosquitto brokers."};
inline const IntKey mqtt_qos{"mqtt.qos", 1, 0, 1,
                             "QoS of the cars' telemetry (0: may be lost; 1: kept until acknowledged)."};
inline const StringKey mqtt_version{"mqtt.version", "5",
                                    "MQTT protocol version of cars and bridge: 5 or 3.1.1."};
inline const StringKey mqtt_credentials{"mqtt.credentials", "",
                                        "Directory written by `fleettwin sim credentials`: passwords, or "
                                        "device certificates (--certs); `up --mqtt` "
                                        "brokers require them. Empty: anonymous."};
inline const IntKey mqtt_receive_maximum{"mqtt.receive_maximum", 2'000, 1, 65'535,
                                         "Unacknowledged QoS 1 messages per bridge connection: a slow log "
                                         "slows the cars instead of growing memory."};
inline const StringKey mqtt_client_id{"mqtt.client_id", "fleettwin-bridge",
                                      "Bridge client id prefix; a restarted bridge must reuse it (its "
                                      "sessions hold what it had not acknowledged)."};
inline const IntKey mqtt_cars_per_process{"mqtt.cars_per_process", 16'000, 1, 18'000,
                                          "Simulated cars per process (one descriptor each; 20,000 open "
                                          "files per process); more cars, more workers."};
inline const IntKey mqtt_shards{"mqtt.shards", 1, 1, 64,
                                "Local mosquitto brokers `up --mqtt` starts (without mqtt.brokers)."};
inline const StringKey mqtt_tls_ca{
    "mqtt.tls_ca", "",
    "CA file: cars and bridge connect to the brokers with TLS and check their certificate."};
inline const StringKey mqtt_tls_cert{"mqtt.tls_cert", "", "Client certificate for TLS (optional)."};
inline const StringKey mqtt_tls_key{"mqtt.tls_key", "", "Client key for TLS (optional)."};
inline const IntKey mqtt_max_message_bytes{
    "mqtt.max_message_bytes", 262'144, 1'024, 16'777'216,
    "Largest MQTT payload the front door takes: the bridge announces it (MQTT 5 Maximum Packet Size, plus 4 "
    "KiB for topic and properties), brokers started by fleettwin refuse larger ones (message_size_limit), "
    "and one that still arrives goes to the DLQ as too_large and is acknowledged. Keep it at least "
    "codec.max_payload_bytes."};
inline const DoubleKey mqtt_rate_limit{
    "mqtt.rate_limit", 0, 0, 1'000'000,
    "Messages per second one car may send through the bridge (telemetry and answers together); the excess "
    "goes to the DLQ as rate_limited and is acknowledged. 0: no limit."};
inline const IntKey mqtt_rate_burst{
    "mqtt.rate_burst", 20, 1, 1'000'000,
    "Messages a car may send at once above mqtt.rate_limit after being quiet."};
inline const IntKey mqtt_rate_cars{
    "mqtt.rate_cars", 100'000, 1, 10'000'000,
    "Cars the rate limit tracks at once per bridge; beyond that the quiet ones are forgotten first."};
inline const BoolKey up_no_sim{
    "up.no_sim", false,
    "`up`: run no simulator; real cars publish to mqtt.brokers (`up --mqtt HOST:PORT --no-sim`, an edge "
    "site) and the run goes on until stopped."};
inline const BoolKey mqtt_durable_ack{
    "mqtt.durable_ack", true,
    "`up --mqtt` on the embedded log: the bridge acknowledges a car's message (PUBACK) only once the inbox "
    "in data_dir (SQLite, synced to disk) has it, and replays the inbox after a crash; false: once the "
    "in-memory log has it (a kill loses what is not stored yet)."};
inline const DoubleKey sim_failure_rate{"sim.failure_rate", 0.02, 0, 1000,
                                        "Expected failures per car per simulated hour."};
inline const DurationKey sim_failure_ramp{
    "sim.failure_ramp", "2m", 0, std::nullopt,
    "Simulated time a failure takes to grow from invisible to its full signature."};
inline const StringKey sim_replay{"sim.replay", "",
                                  "Replay this CSV (cardata-v1 header) instead of simulating cars."};
inline const IntKey sim_inject_invalid{
    "sim.inject_invalid", 0, 0, 1'000'000'000,
    "Also publish this many malformed payloads (for DLQ demos and tests); they are not telemetry."};
inline const StringKey sim_catalog{
    "sim.catalog", "",
    "Catalog (YAML) the simulated cars name their signals by: each cardata-v1 signal is sent as the catalog "
    "signal of that name or alias (e.g. deploy/catalogs/vss.yaml). Empty: the cardata-v1 names."};
inline const DoubleKey sim_upgraded_share{
    "sim.upgraded_share", 0, 0, 1,
    "Share of the simulated cars (0..1, spread evenly) on newer firmware: they also send the sim.catalog "
    "signals added after version 1 (since: 2 or later) with plausible made-up values; the others only "
    "version 1's."};
inline const StringKey ground_truth{
    "ground_truth", "",
    "Ground-truth file of simulated failures (JSON lines); default <data_dir>/ground_truth.jsonl."};
inline const IntKey codec_max_payload_bytes{
    "codec.max_payload_bytes", 16'384, 64, 16'777'216,
    "Largest accepted telemetry payload; larger ones go to the DLQ as oversized."};
inline const DurationKey twin_offline_after{
    "twin.offline_after", "60s", 1, std::nullopt,
    "A car silent this long is marked offline: device time, plus wall time only while the pipeline is caught "
    "up, so a stall marks no car offline (docs/architecture.md, twin liveness)."};
inline const DurationKey twin_flush_interval{
    "twin.flush_interval", "1s", 0, 600'000,
    "The twin stage writes each changed twin at most once per interval, and commits its input then."};
inline const BoolKey aggregate_enabled{
    "aggregate.enabled", true,
    "`up` runs the aggregate stage (window aggregates over event time onto fleet.aggregates, stored by the "
    "sink); the role `fleettwin aggregate` runs it on its own."};
inline const StringKey aggregate_definitions{
    "aggregate.definitions", "",
    "The aggregate definitions the aggregate stage computes: the path of a YAML file (docs/architecture.md "
    "\"Windows and aggregates (engine)\"), or that YAML itself when the value has more than one line. Empty: "
    "the shipped ones (events per car per 5 minutes, an hourly summary per car)."};
inline const DurationKey aggregate_flush_interval{
    "aggregate.flush_interval", "1m", 0, 600'000,
    "The aggregate stage writes the state of each changed car to its changelog (fleet.aggregates.state) at "
    "most once per interval, and commits its input then; a restart replays at most this much. Window results "
    "go out after every batch whatever the interval. 1 minute: with the shipped definitions a car's saved "
    "state is about 0.35 KB (its open windows), about 60 KB/s of changelog at 10,000 cars, and a restart "
    "replays a minute of input (600,000 events at 10,000 msg/s, about a second of aggregation). Embedded "
    "(`up`) the states go to <data_dir>/aggregate_state.sqlite instead, once the "
    "store holds the results before them, and a restart replays the store's history after them."};
inline const IntKey aggregate_max_windows{
    "aggregate.max_windows", 64, 1, 4'096,
    "Windows kept per car (or group) and definition, open or closed awaiting late events; past it the oldest "
    "is emitted final and dropped."};
inline const IntKey aggregate_status_held_per_car{
    "aggregate.status_held_per_car", 256, 1, 100'000,
    "With a definition grouped by `attribute: status`: telemetry events of one car the aggregate stage keeps "
    "while it waits for their scores (fleet.scores). Past it the oldest is counted with status `unknown`."};
inline const IntKey aggregate_status_held_max{
    "aggregate.status_held_max", 200'000, 1, 10'000'000,
    "With a definition grouped by `attribute: status`: telemetry events (and scores ahead of their event) "
    "the "
    "aggregate stage keeps in all while it waits for their match, about 1 KB each (the record and its "
    "decoded "
    "event): 200,000 is about 200 MB. Past it the oldest held event is counted with status `unknown`."};
inline const IntKey log_partitions{"log.partitions", 8, 1, 4'096,
                                   "Partitions of each topic created by fleettwin."};
inline const IntKey log_replication{"log.replication", 1, 1, 16,
                                    "Replication factor of each topic created on Kafka."};
inline const StringKey kafka_brokers{
    "kafka.brokers", "",
    "Kafka bootstrap servers (HOST:PORT,...). Empty: the embedded in-memory log. Any other "
    "`kafka.<property>` key is passed to librdkafka as is (SASL, SSL, tuning)."};
inline const StringKey group{"group", "",
                             "Consumer group of a role process (default fleettwin.<stage>); copies in one "
                             "group share the partitions."};
inline const StringKey schema_registry{
    "schema_registry", "",
    "Schema registry URL (Confluent REST API). Empty in `up`: an embedded registry on registry.listen."};
inline const StringKey registry_listen{
    "registry.listen", "127.0.0.1:8081",
    "Where `up` and `fleettwin registry` serve the embedded schema registry (port 0: any free port)."};
inline const StringKey registry_tokens{
    "registry.tokens", "",
    "Tokens of the embedded schema registry, as role:token,... (the format of api.tokens). When set, "
    "registering a schema needs an operator token and changing a compatibility level an admin token "
    "(Authorization: Bearer); reads stay open for Confluent deserializers. Empty: no authentication."};
inline const StringKey registry_token{
    "registry.token", "",
    "The token fleettwin sends to the schema registry (Authorization: Bearer) to register its schemas. Empty "
    "in `up` with an embedded registry and registry.tokens: a token of the process's own is added."};
inline const IntKey log_capacity{
    "log.capacity", 8'192, 16, 100'000'000,
    "Embedded log: records kept per partition; producers wait when consumers fall this far behind."};
inline const IntKey stage_max_batch{"stage.max_batch", 5'000, 1, 1'000'000,
                                    "Records per stage batch at most."};
inline const DurationKey stage_batch_window{"stage.batch_window", "50ms", 0, 60'000,
                                            "How long a stage keeps polling to fill a batch."};
inline const DurationKey ml_warmup{"ml.warmup", "5m", 0, std::nullopt,
                                   "`up`: the score stage trains a first model on this much event time of "
                                   "telemetry (0: wait for fleet.models)."};
inline const BoolKey ml_warmup_in_role{
    "ml.warmup_in_role", false,
    "`fleettwin score` (one role on Kafka) also trains a first model after ml.warmup when fleet.models has "
    "none; by default the role waits for one (published by `fleettwin train --kafka`)."};
inline const StringKey ml_architecture{"ml.architecture", "fleettwin",
                                       "Autoencoder to train: fleettwin (13 signals + 8 derived features, "
                                       "21-32-12-32-21) or reference (18-14-7-7-14-18)."};
inline const StringKey ml_threshold_method{
    "ml.threshold_method", "alert_rate",
    "Threshold calibration: alert_rate (healthy held-out cars would raise ml.target_false_alerts under the "
    "hysteresis rule; extreme-value fit) or quantile (ml.quantile of held-out scores)."};
inline const DoubleKey ml_target_false_alerts{
    "ml.target_false_alerts", 0.5, 1e-6, 1e6,
    "alert_rate threshold: false anomaly alerts per 1,000 car-hours the threshold aims at."};
inline const DoubleKey ml_quantile{"ml.quantile", 0.995, 0.5, 1,
                                   "quantile threshold: this quantile of reconstruction scores on held-out "
                                   "data (cars far above it left out)."};
inline const DoubleKey ml_input_dropout{
    "ml.input_dropout", 0.05, 0, 0.9,
    "Denoising: share of inputs hidden in each training row, so the autoencoder predicts each signal from "
    "the others rather than copying it."};
inline const DoubleKey ml_reconstruction_range{
    "ml.reconstruction_range", 0, 0, 1,
    "When above 0, each input's reconstruction stays within the range this share of training cars stayed "
    "within (widened by half its width), so a value no healthy car reads is never reconstructed as normal. "
    "Off by default: it also flags healthy modes the training window did not show (see docs/benchmarks.md)."};
inline const DoubleKey ml_familiar_share{
    "ml.familiar_share", 0.005, 0, 0.5,
    "The conditions a model calls familiar (an anomaly in unfamiliar ones raises no alert) leave out the "
    "values only this share of training cars reached, from either end of each input's range, so a mode a few "
    "cars showed in training (a low charge late in the day) stays unfamiliar; 0: all values seen in "
    "training are familiar."};
inline const IntKey ml_epochs{"ml.epochs", 30, 1, 10'000,
                              "Training epochs at most (early stopping may end sooner)."};
inline const IntKey ml_train_seed{
    "ml.train_seed", 42, 0, 9'000'000'000'000'000,
    "Seed of training (held-out cars, initial weights, batch order); same history and seed, same model."};
inline const DoubleKey ml_learning_rate_decay{
    "ml.learning_rate_decay", 0.85, 0.01, 1,
    "Each training epoch's learning rate is this times the last one's (Adam starts at 0.001): the last "
    "epochs settle instead of jumping around the best fit, so two training runs on the same history give "
    "models with the same false-alert rate. 1: constant."};
inline const IntKey ml_max_rows{"ml.max_rows", 400'000, 100, 100'000'000,
                                "Training samples at most this many events of the history."};
inline const IntKey ml_raise_k{"ml.raise_k", 2, 1, 64,
                               "Alert hysteresis: raise after this many anomalous events..."};
inline const IntKey ml_window_n{"ml.window_n", 3, 1, 64, "...among a car's last this many events."};
inline const IntKey ml_clear_m{
    "ml.clear_m", 180, 1, 100'000,
    "Alert hysteresis: clear after this many normal events in a row (180: 30 min at a 10 s interval)."};
inline const DurationKey ml_new_symptom_settle{
    "ml.new_symptom_settle", "15m", 0, std::nullopt,
    "A car in alert raises another alert when a part of it (cooling, battery, drivetrain, tyres, chassis) "
    "that was normal turns anomalous; the parts an alert covers are those anomalous this long after it was "
    "raised (0: one alert per car at a time)."};
inline const BoolKey ml_skip_unfamiliar{
    "ml.skip_unfamiliar", true,
    "An anomalous event whose anomalous signals all read values seen in training, while another signal reads "
    "a value the training window never showed, is counted (fleettwin_score_unfamiliar_total) but raises no "
    "alert: the model is extrapolating."};
inline const DoubleKey ml_drift_threshold{
    "ml.drift_threshold", 0.25, 0.01, 100,
    "Drift watch: the score stage asks for a retraining (a retrain.request on fleet.models) when the largest "
    "per-signal PSI of live traffic against the model's training data stays above this for ml.drift_for "
    "(0.1: minor shift, 0.25: significant)."};
inline const DurationKey ml_drift_for{"ml.drift_for", "15m", 0, std::nullopt,
                                      "Drift watch: how long (event time) the largest PSI must stay above "
                                      "ml.drift_threshold before a retraining is asked for."};
inline const DurationKey ml_drift_cooldown{
    "ml.drift_cooldown", "6h", 0, std::nullopt,
    "Drift watch: at most one retrain request per this much event time "
    "from one score stage."};
inline const IntKey ml_drift_window{"ml.drift_window", 20'000, 100, 10'000'000,
                                    "Drift watch: live events in the sliding window compared with the "
                                    "training data (one byte per watched signal each)."};
inline const DurationKey ml_firmware_grace{"ml.firmware_grace", "1h", 0, std::nullopt,
                                           "Outdated-firmware rule: a car may stay below the fleet's newest "
                                           "version this long (a rollback alerts at once)."};
inline const DurationKey ml_train_window{
    "ml.train_window", "2h", 60'000, std::nullopt,
    "Trainer: retrains on this much of the newest event time of fleet.telemetry (bounded by "
    "ml.train_max_events)."};
inline const BoolKey ml_train_leave_out_alerted{
    "ml.train_leave_out_alerted", false,
    "Trainer: a candidate's training window leaves out every car the active model has in anomaly alert at "
    "its end (the window replayed as the score stage scores it; kept whole when that is over a quarter of "
    "the cars). Off by default: measured, it left out the failing cars almost exactly but did not make the "
    "candidates better (docs/benchmarks.md, lifecycle protocol)."};
inline const IntKey ml_train_max_events{
    "ml.train_max_events", 400'000, 1'000, 100'000'000,
    "Trainer: events kept for the training window and for a shadow trial at most each (the oldest go "
    "first; counted in fleettwin_trainer_evicted_total)."};
inline const DurationKey ml_retrain_every{
    "ml.retrain_every", "0s", 0, std::nullopt,
    "Trainer: trains a candidate model every this much event time (0: only when asked, by POST "
    "/api/v1/models/train or a drift alarm)."};
inline const DurationKey ml_shadow_period{
    "ml.shadow_period", "30m", 0, std::nullopt,
    "Trainer: a candidate runs in shadow on live traffic this much event time before the promotion gate "
    "compares it with the active model."};
inline const StringKey ml_promotion{
    "ml.promotion", "auto",
    "Trainer: auto (a candidate the gate passes becomes the active model) or manual (it stays the shadow "
    "candidate with the gate's results; POST /api/v1/models/promote)."};
inline const DurationKey ml_eval_window{
    "ml.eval_window", "30m", 1, std::nullopt,
    "`eval`: an alert detects a failure that began at most this long before it."};
inline const DoubleKey ml_promotion_margin_false_alerts{
    "ml.promotion_margin_false_alerts", 1.0, 0, 1e6,
    "Promotion gate: a candidate's estimated false alerts per 1,000 car-hours over the shadow period may "
    "exceed the active model's by this much (estimated false: marked false by operators, or unlabelled on a "
    "car the other model had no alert on); in count they may never exceed the active model's."};
inline const IntKey ml_promotion_margin_signal_false_alerts{
    "ml.promotion_margin_signal_false_alerts", 1, -1, 1'000'000,
    "Promotion gate: disputed alerts (unlabelled, on a car the other model had no alert on) the candidate "
    "may "
    "raise on one first signal beyond the active model's on it, when operators labelled none of them; -1: "
    "no per-signal check."};
inline const DoubleKey ml_promotion_margin_missed_alerts{
    "ml.promotion_margin_missed_alerts", 0.25, 0, 1,
    "Promotion gate: share of the active model's alerts the candidate may fail to raise, net of the alerts "
    "the candidate raised alone (less those operators marked false)."};
inline const DoubleKey ml_promotion_margin_unfamiliar{
    "ml.promotion_margin_unfamiliar", 0.01, 0, 1,
    "Promotion gate: share of events the candidate may score in unfamiliar conditions above the active "
    "model's."};
inline const DoubleKey ml_promotion_margin_disagreement{
    "ml.promotion_margin_disagreement", 0.05, 0, 1,
    "Promotion gate: share of events on which the candidate's and the active model's alert states may "
    "differ, over the cars the two models did not both alert on."};
inline const StringKey http_listen{"http.listen", "127.0.0.1:8080",
                                   "Where `up` and `fleettwin api` serve the REST API and the dashboard "
                                   "(port 0: any free port; empty in `up`: no HTTP server)."};
inline const StringKey metrics_listen{"metrics.listen", "",
                                      "Where a role process (bridge, process, score, twin, sink, sim, "
                                      "registry) "
                                      "serves /metrics, /healthz and /readyz for Prometheus and Kubernetes "
                                      "probes (port 0: any free port; empty: none). `up` and `fleettwin api` "
                                      "serve them on http.listen."};
inline const StringKey http_web_dir{"http.web_dir", "",
                                    "The built dashboard (web/dist); empty: found next to the binary or in "
                                    "the source tree it was built from."};
inline const IntKey http_max_stream_clients{
    "http.max_stream_clients", 256, 1, 10'000,
    "Live-stream (SSE) clients served at once; each holds one HTTP worker thread."};
inline const IntKey http_max_streams_per_token{"http.max_streams_per_token", 32, 1, 10'000,
                                               "Live-stream clients one API token may hold at once (429 past "
                                               "it), so one client cannot take every slot."};
inline const IntKey http_max_connections{
    "http.max_connections", 1'024, 16, 100'000,
    "HTTP connections the API holds at once, queued or served; the one past it is answered 503 at once "
    "(each holds a file descriptor, which the store, the log and MQTT need too)."};
inline const StringKey api_tokens{"api.tokens", "",
                                  "API tokens as role:token,... (roles viewer, operator, admin). Empty: an "
                                  "admin token is generated and kept in <data_dir>/api-token."};

// Edge site to central cluster (`up --uplink`, docs/architecture.md "Edge sites and the central cluster").
inline const StringKey site{
    "site", "",
    "Name of this edge site ([a-z0-9-]{1,64}): the prefix of its topics on the central "
    "cluster (<site>.fleet.telemetry, ...), as MirrorMaker 2's source alias."};
inline const StringKey uplink_brokers{
    "uplink.brokers", "",
    "Central Kafka (HOST:PORT,...) an edge `up` replicates telemetry, twins, scores, alerts and command "
    "answers to, through a spool on its disk, and takes central commands from. Empty: no uplink."};
inline const StringKey uplink_registry{
    "uplink.registry", "",
    "Central schema registry URL: the uplink registers the edge's Avro schemas there under "
    "<site>.<topic>-value and rewrites each record's schema id. Required with uplink.brokers."};
inline const IntKey uplink_disk_budget{
    "uplink.disk_budget", 0, 0, int64_t{1} << 50,
    "Bytes the uplink spool (<data_dir>/uplink.sqlite) may hold while central is unreachable; when full the "
    "site holds the cars back, never drops. 0: 24 h of the site's measured traffic (the highest ten-minute "
    "moving average of bytes spooled a second, x 86,400 s; it never shrinks and is kept across restarts), at "
    "least uplink.disk_budget_min."};
inline const IntKey uplink_disk_budget_min{
    "uplink.disk_budget_min", int64_t{1} << 30, 1, int64_t{1} << 50,
    "With uplink.disk_budget 0: the least the spool may hold, before the traffic is measured. With the "
    "simulator, at least 24 h of its configured rate (sim.cars / sim.interval x 1 KiB a message)."};
inline const IntKey uplink_batch{"uplink.batch", 5'000, 1, 1'000'000,
                                 "Spooled records the uplink sends to central per batch at most."};
inline const StringKey sim_id_prefix{
    "sim.id_prefix", "car-",
    "Prefix of simulated car ids ([A-Za-z0-9_-]): fleets of several sites (`up --uplink`) apart on central."};
inline const BoolKey sites{"sites", false,
                           "Central roles (twin, sink on Kafka): also read every site's topics "
                           "(<site>.fleet.*, by regex subscription) besides the central's own."};

}  // namespace keys

}  // namespace fleettwin::config
