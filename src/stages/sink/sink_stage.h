#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/histogram.h"
#include "core/metrics.h"
#include "registry/telemetry_reader.h"
#include "stages/stage.h"
#include "store/twin_store.h"

namespace fleettwin::stages {

/// The sink stage: writes telemetry history and twins from the log into the store, one atomic, idempotent
/// store write per batch (twin updates coalesced per car), so the runner commits the input only once the
/// store has it. Records the end-to-end latency of every stored message. A write that fails because the
/// store is unreachable (TwinStore::transient_failure) is retried with capped backoff until it succeeds or
/// the runner stops; any other failure throws. Runs on its runner's thread; interrupt() from any thread.
class SinkStage final : public Stage {
 public:
  /// Waits between retries of a store write during an outage: doubling from `first` up to `max`.
  struct RetryOptions {
    std::chrono::milliseconds first{200};
    std::chrono::milliseconds max{5000};
  };
  SinkStage(std::unique_ptr<store::TwinStore> store, core::Metrics& metrics, core::Histogram& latency,
            registry::TelemetryReader reader = registry::TelemetryReader());
  SinkStage(std::unique_ptr<store::TwinStore> store, core::Metrics& metrics, core::Histogram& latency,
            registry::TelemetryReader reader, RetryOptions retry);
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void interrupt() override;

 private:
  /// `call()` (a store access), repeated while it fails transiently; throws once interrupted.
  template <typename F>
  auto retrying(F&& call);

  std::unique_ptr<store::TwinStore> _store;
  core::Histogram& _latency;
  registry::TelemetryReader _reader;
  store::WriteBatch _batch;  // per-batch scratch, reused
  std::unordered_map<std::string, std::size_t> _twin_index;
  std::vector<int64_t> _ingest_times;
  core::Counter& _stored;
  core::Counter& _duplicates;
  core::Counter& _twins_applied;
  core::Counter& _twins_stale;
  core::Counter& _bad;
  core::Counter& _store_retries;
  RetryOptions _retry;
  std::mutex _wake_mu;  // with _wake: interrupt() ends a backoff wait at once
  std::condition_variable _wake;
  std::atomic<bool> _interrupted{false};
};

}  // namespace fleettwin::stages
