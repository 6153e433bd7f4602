#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "registry/telemetry_reader.h"
#include "stages/stage.h"
#include "stages/uplink/spool.h"
#include "stages/uplink/spool_budget.h"

namespace fleettwin::stages {

/// What the uplink's parts tell each other and the progress line, the API and /metrics: thread-safe.
struct UplinkStatus {
  enum State : int8_t { kLive = 0, kSpooling = 1, kFull = 2 };
  std::atomic<bool> central_reachable{true};  ///< the sender's last batch was acknowledged in time
  std::atomic<bool> full{false};              ///< the capture waits for room: the cars are held back
  State state() const { return full ? kFull : central_reachable ? kLive : kSpooling; }

  /// Cars whose telemetry this site has seen (the spool's marks, then every captured record): the downlink
  /// forwards central commands for these only.
  void saw(const std::string& car);
  bool seen(const std::string& car) const;

 private:
  mutable std::mutex _mu;
  std::set<std::string, std::less<>> _cars;
};

/// Name of a state on /metrics' help, the progress line and the API.
const char* uplink_state_name(UplinkStatus::State s);

/// The edge side of store-and-forward: reads everything a site replicates to central (telemetry, twins,
/// scores, alerts, command answers) from the site's log and appends it to the spool, with each car's newest
/// telemetry seq, and tells the budget what it spooled (SpoolBudget: 24 h of the measured traffic unless
/// configured). While the spool holds the budget's bytes it waits for the sender to make room, so its input
/// stops moving, the embedded log fills and its producers (process, then the bridge's acknowledgements) wait:
/// the cars are held back, nothing is dropped. Runs on its StageRunner's thread; interrupt() from any thread.
class UplinkCapture final : public Stage {
 public:
  UplinkCapture(std::shared_ptr<Spool> spool, std::shared_ptr<SpoolBudget> budget,
                std::shared_ptr<UplinkStatus> status, registry::TelemetryReader reader,
                core::Metrics& metrics);
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void interrupt() override { _interrupted = true; }

 private:
  /// Waits until `bytes` more fit in the budget (always when the spool is empty: one batch larger than the
  /// budget still goes through). Throws when interrupted.
  void wait_for_room(int64_t bytes);

  std::shared_ptr<Spool> _spool;
  std::shared_ptr<SpoolBudget> _budget;
  std::shared_ptr<UplinkStatus> _status;
  registry::TelemetryReader _reader;
  std::atomic<bool> _interrupted{false};
  core::Gauge& _bytes;
  core::Gauge& _state;
  core::Gauge& _budget_gauge;
  core::Counter& _undecodable;
};

}  // namespace fleettwin::stages
