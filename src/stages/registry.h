#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "catalog/catalog.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/histogram.h"
#include "core/metrics.h"
#include "registry/client.h"
#include "stages/aggregate/aggregate_stage.h"
#include "stages/process/process_stage.h"
#include "stages/score/score_stage.h"
#include "stages/sink/sink_stage.h"
#include "stages/stage.h"
#include "stages/train/train_stage.h"
#include "stages/twin/twin_stage.h"
#include "store/twin_store.h"

namespace fleettwin::stages {

/// What a stage needs to be built; filled by the app for the chosen mode. Main thread only.
struct StageContext {
  core::Metrics& metrics;
  const core::Clock& clock;
  core::Histogram& latency;  ///< end-to-end latency, recorded by the sink
  std::function<std::unique_ptr<store::TwinStore>()> open_store;
  /// The signal catalog every stage of this process reads (catalog.file, loaded by the host).
  std::shared_ptr<const fleettwin::catalog::Catalog> catalog = fleettwin::catalog::builtin();
  ProcessStage::Options process{};
  TwinStage::Options twin{};
  std::vector<TwinSnapshot> initial_twins{};  ///< where the twin stage resumes from (embedded: the store)
  TwinStage::Links twin_links{};              ///< the twin stage's view of its upstream and fleet.twins
  std::shared_ptr<registry::SchemaRegistryClient>
      registry{};  ///< readers check writer schemas by id; null: trust
  ScoreStage::Options score{};
  SinkStage::Retention sink_retention{};  ///< its clock is set from `clock` when the sink is built
  std::shared_ptr<ModelSlot> models{};    ///< where the score stage finds its models (set by a ModelWatcher)
  WarmupTrainer score_trainer{};          ///< null: the score stage never trains, it waits for fleet.models
  AggregateStage::Options aggregate{};    ///< the host sets result_schema_id and changelog
  AggregateStage::Links aggregate_links{};
  TrainStage::Options train{};
  PromotionGate train_gate{};
  /// The trainer's view of fleet.models (its own ModelWatcher) and how it trains (libtorch: set by the app;
  /// null: it never trains).
  std::shared_ptr<ModelSlot> train_models{};
  CandidateTrainer candidate_trainer{};
  /// This process runs one role of a distributed deployment (`fleettwin score`), not everything (`up`).
  bool single_role = false;
};

/// One registered stage: its descriptor, how it reads its configuration and how to build it.
struct StageEntry {
  const StageDescriptor& (*descriptor)();
  /// Reads the stage's configuration keys, exactly those its descriptor lists (a test holds every entry to
  /// that), into its options in `ctx`. What the host decides (schema ids, the store, the clock) it sets
  /// itself.
  void (*configure)(const config::Config& config, StageContext& ctx);
  std::function<std::unique_ptr<Stage>(StageContext&)> make;
};

/// Every stage, in pipeline order: the one place a stage is declared. The roles `run_pipeline` knows, the
/// CLI's role commands and the API's list of stages are read from here; adding a stage is its folder plus
/// one entry.
const std::vector<StageEntry>& registry();
/// The entry called `name`, or nullptr.
const StageEntry* find_stage(const std::string& name);

}  // namespace fleettwin::stages
