#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/twin.h"
#include "stages/stage.h"

namespace fleettwin::stages {

/// The twin stage: keeps every car's twin in memory, applies telemetry in seq order (older or replayed
/// messages change nothing), marks cars offline after a silence, and writes each changed twin once per batch
/// to the compacted fleet.twins changelog. Runs on its runner's thread; `online_count` is read by others.
class TwinStage final : public Stage {
 public:
  struct Options {
    int64_t offline_after_ms = 60000;
  };
  /// `initial` is the state to start from (the store's twins after a restart).
  TwinStage(Options options, const core::Clock& clock, core::Metrics& metrics,
            std::vector<core::Twin> initial = {});
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void tick(log::Producer& out) override;

 private:
  void emit(const core::Twin& twin, log::Producer& out);

  Options _options;
  const core::Clock& _clock;
  std::unordered_map<std::string, core::Twin> _twins;
  std::vector<core::Twin*> _dirty;
  core::Telemetry _t;
  core::Counter& _stale;
  core::Counter& _bad;
  core::Gauge& _online;
  core::Gauge& _count;
};

}  // namespace fleettwin::stages
