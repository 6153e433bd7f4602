#include "stages/registry.h"

#include "stages/sink/sink_stage.h"

namespace fleettwin::stages {

const std::vector<StageEntry>& registry() {
  static const std::vector<StageEntry> entries = {
      {&ProcessStage::static_descriptor,
       [](StageContext& c) { return std::make_unique<ProcessStage>(c.process, c.metrics); }},
      {&ScoreStage::static_descriptor,
       [](StageContext& c) {
         return std::make_unique<ScoreStage>(c.score, c.models, c.metrics, registry::TelemetryReader(c.registry),
                                             c.score_trainer);
       }},
      {&TwinStage::static_descriptor,
       [](StageContext& c) {
         return std::make_unique<TwinStage>(c.twin, c.clock, c.metrics, std::move(c.initial_twins),
                                            registry::TelemetryReader(c.registry));
       }},
      {&SinkStage::static_descriptor,
       [](StageContext& c) {
         return std::make_unique<SinkStage>(c.open_store(), c.metrics, c.latency,
                                            registry::TelemetryReader(c.registry));
       }},
  };
  return entries;
}

const StageEntry* find_stage(const std::string& name) {
  for (const auto& e : registry())
    if (e.descriptor().name == name) return &e;
  return nullptr;
}

}  // namespace fleettwin::stages
