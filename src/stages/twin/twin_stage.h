#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/twin.h"
#include "registry/telemetry_reader.h"
#include "stages/stage.h"

namespace fleettwin::stages {

/// The twin stage: keeps every car's twin in memory, applies telemetry in seq order (older or replayed
/// messages change nothing), marks cars offline after a silence, and writes each changed twin at most once
/// per flush interval to the compacted fleet.twins changelog: a car sends many messages per interval, and a
/// twin write costs several times a telemetry write downstream. Time is event time (the newest device ts
/// seen, advanced by wall time while nothing arrives), so offline detection is right in --fast runs and when
/// the stage is behind. Runs on its runner's thread.
class TwinStage final : public Stage {
 public:
  struct Options {
    int64_t offline_after_ms = 60000;
    int64_t flush_interval_ms = 1000;
  };
  /// `initial` is the state to start from (the store's twins after a restart).
  TwinStage(Options options, const core::Clock& clock, core::Metrics& metrics,
            std::vector<core::Twin> initial = {},
            registry::TelemetryReader reader = registry::TelemetryReader());
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void tick(log::Producer& out) override;
  void flush_state(log::Producer& out) override;
  std::chrono::milliseconds commit_interval() const override {
    return std::chrono::milliseconds(_options.flush_interval_ms);
  }
  /// Event time now: see the class comment.
  int64_t now_ms() const;

 private:
  struct Entry {
    core::Twin twin;
    bool dirty = false;
    // Ids of the car's alerts raised and not yet cleared (an anomaly alert, further alerts for other parts, a
    // firmware alert): the car stays "anomaly" until the last one clears. Not restored after a restart: a
    // clear whose raise came before it finds nothing to remove, and only the alerts seen since count.
    std::set<std::string> open_alerts;
  };
  void mark(Entry& e);
  void changed(Entry& e);                  // version + 1 and mark
  void apply_other(const log::Record& r);  // commands, command acks, scores, alerts

  Options _options;
  const core::Clock& _clock;
  std::unordered_map<std::string, Entry> _twins;  // node-based: Entry* stay valid
  std::vector<Entry*> _dirty;
  // Commands not yet answered, to withdraw their settings when they fail or expire unanswered.
  struct PendingCommand {
    std::string car;
    std::map<std::string, std::string> settings;
    int64_t expires = 0;  // ms; 0 = never
  };
  std::unordered_map<std::string, PendingCommand> _commands;
  // Answers that arrived before their command (the topics are read in no fixed order), by command id. The
  // command is then not pending; an answer whose command never comes is dropped after a day (event time).
  struct EarlyAnswer {
    std::string car;
    std::string status;
    int64_t seen = 0;
  };
  std::unordered_map<std::string, EarlyAnswer> _early_answers;
  void withdraw(Entry& e, const PendingCommand& c);
  int64_t _watermark = 0;  // newest device ts applied
  std::chrono::steady_clock::time_point _watermark_at;
  registry::TelemetryReader _reader;
  core::Telemetry _t;
  core::Counter& _stale;
  core::Counter& _bad;
  core::Gauge& _online;
  core::Gauge& _count;
};

}  // namespace fleettwin::stages
