#include "stages/registry.h"
#include "stages/sink/sink_stage.h"

namespace fleettwin::stages {

namespace keys = config::keys;

namespace {

void configure_process(const config::Config& config, StageContext& c) {
  c.process.max_payload_bytes = static_cast<std::size_t>(config.get(keys::codec_max_payload_bytes));
  const std::string unknown = config.get(keys::catalog_unknown_fields);
  if (unknown != "drop" && unknown != "reject") {
    throw config::ConfigError("catalog.unknown_fields: \"" + unknown + "\" is neither drop nor reject");
  }
  c.process.unknown_fields = unknown == "drop" ? codec::UnknownFields::kDrop : codec::UnknownFields::kReject;
}

void configure_score(const config::Config& config, StageContext& c) {
  c.score.monitor = monitor_options(config);
  c.score.drift_window = static_cast<std::size_t>(config.get(config::keys::ml_drift_window));
  c.score.drift_threshold = config.get(config::keys::ml_drift_threshold);
  c.score.drift_for_ms = config.get(config::keys::ml_drift_for).count();
  c.score.drift_cooldown_ms = config.get(config::keys::ml_drift_cooldown).count();
  const auto warmup_ms = config.get(keys::ml_warmup).count();
  const bool role_trains = config.get(keys::ml_warmup_in_role);
  // `fleettwin score` waits for the operator's model on fleet.models (a copy training its own would publish
  // it over theirs, and copies would race); `up`, which runs everything, trains one after the warm-up.
  c.score.warmup_ms = c.single_role && !role_trains ? 0 : warmup_ms;
  // The model reads the features of the catalog this process runs on.
  c.score.space = std::make_shared<const ml::FeatureSpace>(c.catalog);
}

void configure_train(const config::Config& config, StageContext& c) {
  c.train = train_stage_options(config);
  c.train.space = std::make_shared<const ml::FeatureSpace>(c.catalog);
  c.train_gate = promotion_gate(config);
}

void configure_twin(const config::Config& config, StageContext& c) {
  c.twin.offline_after_ms = config.get(keys::twin_offline_after).count();
  c.twin.flush_interval_ms = config.get(keys::twin_flush_interval).count();
}

// The definitions: the operator's file, or the shipped ones, read against this process's catalog.
void configure_aggregate(const config::Config& config, StageContext& c) {
  c.aggregate.definitions = aggregate_definitions(config, *c.catalog);
  AggregateStage::check_attributes(c.aggregate.definitions);
  c.aggregate.flush_interval_ms = config.get(keys::aggregate_flush_interval).count();
  c.aggregate.engine.max_windows_per_key = static_cast<std::size_t>(config.get(keys::aggregate_max_windows));
  c.aggregate.status_held.per_car = static_cast<std::size_t>(config.get(keys::aggregate_status_held_per_car));
  c.aggregate.status_held.total = static_cast<std::size_t>(config.get(keys::aggregate_status_held_max));
}

// The sink writes to whatever store the host opens for it (`open_store`); it reads the retention keys.
void configure_sink(const config::Config& config, StageContext& c) {
  c.sink_retention.history_ms = config.get(keys::store_history_retention).count();
  c.sink_retention.aggregates_ms = config.get(keys::store_aggregates_retention).count();
  c.sink_retention.interval_ms = config.get(keys::store_retention_interval).count();
}

}  // namespace

const std::vector<StageEntry>& registry() {
  static const std::vector<StageEntry> kEntries = {
      {&ProcessStage::static_descriptor, &configure_process,
       [](StageContext& c) { return std::make_unique<ProcessStage>(c.process, c.catalog, c.metrics); }},
      {&ScoreStage::static_descriptor, &configure_score,
       [](StageContext& c) {
         return std::make_unique<ScoreStage>(
             c.score, c.models, c.metrics, registry::TelemetryReader(c.registry, c.catalog), c.score_trainer);
       }},
      {&TwinStage::static_descriptor, &configure_twin,
       [](StageContext& c) {
         return std::make_unique<TwinStage>(c.twin, c.clock, c.metrics, std::move(c.initial_twins),
                                            registry::TelemetryReader(c.registry, c.catalog), c.twin_links);
       }},
      {&AggregateStage::static_descriptor, &configure_aggregate,
       [](StageContext& c) {
         return std::make_unique<AggregateStage>(
             c.aggregate, c.metrics, registry::TelemetryReader(c.registry, c.catalog), c.aggregate_links);
       }},
      {&SinkStage::static_descriptor, &configure_sink,
       [](StageContext& c) {
         auto sink = std::make_unique<SinkStage>(c.open_store(), c.metrics, c.latency,
                                                 registry::TelemetryReader(c.registry, c.catalog));
         SinkStage::Retention retention = c.sink_retention;
         retention.clock = &c.clock;
         sink->set_retention(retention);
         return sink;
       }},
      {&TrainStage::static_descriptor, &configure_train,
       [](StageContext& c) {
         return std::make_unique<TrainStage>(c.train, c.train_models, c.candidate_trainer, c.train_gate,
                                             c.metrics, registry::TelemetryReader(c.registry, c.catalog));
       }},
  };
  return kEntries;
}

const StageEntry* find_stage(const std::string& name) {
  for (const auto& e : registry())
    if (e.descriptor().name == name) return &e;
  return nullptr;
}

}  // namespace fleettwin::stages
