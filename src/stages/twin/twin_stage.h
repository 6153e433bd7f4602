#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/alert.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/twin.h"
#include "registry/telemetry_reader.h"
#include "stages/dead_letters.h"
#include "stages/stage.h"
#include "stages/twin/liveness.h"

namespace fleettwin::stages {

/// A twin as the twin stage resumes it: the document, the stage's bookkeeping for the car, and the partition
/// number its records come from (-1: not known, a twin read from the store).
struct TwinSnapshot {
  core::Twin twin;
  core::TwinPending pending;
  int32_t partition = -1;
};

/// An answer the twin stage holds until its command arrives.
struct EarlyAnswer {
  std::string car;
  std::string status;
  int64_t seen = 0;  ///< liveness time it was read at
};

/// The twin stage: keeps the twins of the cars of its partitions in memory, applies telemetry in seq order
/// (older or replayed messages change nothing), marks cars offline after a silence, and writes each changed
/// twin at most once per flush interval to the compacted fleet.twins changelog: a car sends many messages
/// per interval, and a twin write costs several times a telemetry write downstream. Offline detection and
/// command expiry run on liveness time (liveness.h): a stalled pipeline marks no car offline. The records of
/// one car carry the same partition number on every input topic (all are keyed by car and equally
/// partitioned), so a car belongs to a partition number: the stage drops a car's state when it loses the
/// last input partition of that number and loads it from fleet.twins when it gains the first. Runs on its
/// runner's thread.
class TwinStage final : public Stage {
 public:
  struct Options {
    int64_t offline_after_ms = 60000;
    int64_t flush_interval_ms = 1000;
  };
  /// What the stage reads beyond its input, supplied by the host.
  struct Links {
    /// True when the stage's upstream (the process stage) has consumed all of its input; null: assume so.
    /// Asked about once per tick, only while the stage's own input is caught up.
    std::function<bool()> upstream_caught_up;
    /// The latest twins on fleet.twins of the given partition numbers; null: nothing to load (the embedded
    /// log does not outlive the process, and its single member is never rebalanced).
    std::function<std::vector<TwinSnapshot>(const std::set<int32_t>&)> load;
    /// Steady time in ms, for liveness; null: std::chrono::steady_clock.
    std::function<int64_t()> steady_ms;
  };
  /// `initial` is the state to start from (the store's twins after a restart of `up`).
  TwinStage(Options options, const core::Clock& clock, core::Metrics& metrics,
            std::vector<TwinSnapshot> initial = {},
            registry::TelemetryReader reader = registry::TelemetryReader(), Links links = {});
  static const StageDescriptor& static_descriptor();
  const StageDescriptor& descriptor() const override { return static_descriptor(); }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override;
  void tick(log::Producer& out) override;
  void flush_state(log::Producer& out) override;
  std::chrono::milliseconds commit_interval() const override {
    return std::chrono::milliseconds(_options.flush_interval_ms);
  }
  void on_assigned(const std::vector<log::TopicPartition>& partitions) override;
  void on_revoked(const std::vector<log::TopicPartition>& partitions) override;
  void observe_input(bool caught_up) override;
  /// Liveness time now: see liveness.h.
  int64_t now_ms() const;

 private:
  struct Entry {
    core::Twin twin;
    core::TwinPending pending;
    int32_t partition = -1;
    bool dirty = false;
  };
  Entry& entry(const std::string& car, int32_t partition);
  void adopt(TwinSnapshot snapshot);
  void mark(Entry& e);
  void changed(Entry& e);  // version + 1 and mark
  // Each applies one record, or sends it to the DLQ of its topic with the reason it cannot be used.
  void apply_telemetry(const log::Record& r, log::Producer& out);
  void apply_other(const log::Record& r, log::Producer& out);  // commands, command acks, scores, alerts
  void apply_score(const log::Record& r, log::Producer& out);
  void apply_command(const log::Record& r, log::Producer& out);
  void apply_ack(const log::Record& r, log::Producer& out);
  /// Keeps an answer whose command was not seen (yet); false when the car already has
  /// core::kMaxEarlyAnswersPerCar of them.
  bool keep_early_answer(const core::CommandAck& a);
  void forget_early_answer(std::unordered_map<std::string, EarlyAnswer>::iterator it);
  void apply_alert(Entry& e, const core::Alert& a);
  void expire_commands(Entry& e, int64_t now, log::Producer& out);
  void withdraw(Entry& e, const core::TwinPending::Command& c);
  void observe_liveness();

  Options _options;
  const core::Clock& _clock;
  Links _links;
  std::unordered_map<std::string, Entry> _twins;  // node-based: Entry* stay valid
  std::vector<Entry*> _dirty;
  std::map<int32_t, int> _held;  // input partitions held, per partition number
  // Answers that arrived before their command (the topics are read in no fixed order), by answer_key(car,
  // id). The command is then not pending. Bounded per car (core::kMaxEarlyAnswersPerCar; beyond, the answer
  // goes to the DLQ) and in time: one whose command never comes is dropped after core::kEarlyAnswerTtlMs.
  std::unordered_map<std::string, EarlyAnswer> _early_answers;
  std::unordered_map<std::string, std::size_t> _early_per_car;
  Liveness _liveness;
  bool _input_caught_up = false;
  bool _input_lagged = false;  // the input fell behind since the last liveness look
  registry::TelemetryReader _reader;
  core::Telemetry _t;
  DeadLetters _dead_letters;
  core::Counter& _stale;
  core::Counter& _forgotten;
  core::Gauge& _online;
  core::Gauge& _count;
};

}  // namespace fleettwin::stages
