#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "codec/telemetry_reader.h"
#include "core/histogram.h"
#include "core/metrics.h"
#include "stages/stage.h"
#include "store/twin_store.h"

namespace fleettwin::stages {

/// The sink stage: writes telemetry history and twins from the log into the store, one atomic, idempotent
/// store write per batch (twin updates coalesced per car), so the runner commits the input only once the
/// store has it. Records the end-to-end latency of every stored message. Runs on its runner's thread.
class SinkStage final : public Stage {
 public:
  SinkStage(std::unique_ptr<store::TwinStore> store, core::Metrics& metrics, core::Histogram& latency,
            codec::TelemetryReader reader = codec::TelemetryReader());
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;

 private:
  std::unique_ptr<store::TwinStore> _store;
  core::Histogram& _latency;
  codec::TelemetryReader _reader;
  store::WriteBatch _batch;  // per-batch scratch, reused
  std::unordered_map<std::string, std::size_t> _twin_index;
  std::vector<int64_t> _ingest_times;
  core::Counter& _stored;
  core::Counter& _duplicates;
  core::Counter& _twins_applied;
  core::Counter& _twins_stale;
  core::Counter& _bad;
};

}  // namespace fleettwin::stages
