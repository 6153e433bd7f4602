#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/keys.h"
#include "core/metrics.h"
#include "log/log.h"

namespace fleettwin::stages {

/// A command-line flag of a stage's role command beyond the ones every role takes (--kafka, --group, ...).
struct StageFlag {
  std::string flag;            ///< e.g. "--mongo"
  const config::KeySpec* key;  ///< the configuration key it sets
  std::string help;
};

/// What a stage is: its name, the topics it reads and writes, the config keys it takes, how its role command
/// is described. Registered once in stages/registry.cc; the roles of `run_pipeline`, the CLI's role commands
/// and their help, and the API's list of stages all come from there.
struct StageDescriptor {
  std::string name;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<const config::KeySpec*> config_keys;  ///< every key the stage's options are built from
  std::string description;
  std::string summary{};           ///< one line for `fleettwin --help`: what goes in and what comes out
  std::vector<StageFlag> flags{};  ///< extra flags of `fleettwin <name>`
  /// The stage consumes derived data and may fall behind its inputs rather than hold their producers back
  /// (Log::allow_lag): on the embedded log a full partition evicts past its group, and what it skipped is
  /// counted (Stage::skipped, `fleettwin_records_skipped_total`). Only the score stage: twin and sink keep
  /// the state and the history and must never lose a record, and process is the ingestion itself.
  bool may_lag = false;
};

/// A pipeline stage: turns a batch of input records into output records (and, for the sink, store writes).
/// Runs on its StageRunner's thread only; it never polls or commits itself, so every stage gets the same
/// exactly-once-effect discipline from the runner.
class Stage {
 public:
  virtual ~Stage() = default;
  virtual const StageDescriptor& descriptor() const = 0;
  /// Handles one batch. Outputs go to `out`; any other side effect (a store write) must be durable when
  /// this returns, because the runner commits the input right after `out` is flushed.
  virtual void process(const std::vector<log::Record>& batch, log::Producer& out) = 0;
  /// Lowers `next`, the offsets the runner is about to add to what it commits after a batch, for input the
  /// stage still holds unprocessed (the aggregate stage's events waiting for their score): a kill then
  /// replays them. Called right after process(); the offsets it leaves must only grow from batch to batch.
  virtual void limit_commit(log::Offsets& next) const {}
  /// Called about once per tick interval, also when idle: timers such as offline detection.
  virtual void tick(log::Producer& out) {}
  /// Writes what the stage held back to coalesce (e.g. one twin per car instead of one per message). The
  /// runner calls it right before every commit, so nothing committed is left unwritten, and only once every
  /// output sent before it is acknowledged: what it writes is never ahead of the outputs (a kill between the
  /// two leaves the state behind them, and the replayed input writes them again).
  virtual void flush_state(log::Producer& out) {}
  /// How often the runner calls flush_state and, on a durable log, commits; 0: after every batch. A longer
  /// interval lets flush_state coalesce more, at the price of a longer replay after a crash (replays are
  /// harmless: every output is idempotent). On the embedded log, which never replays, input is committed
  /// after every batch regardless, so held-back state does not pin the log's memory.
  virtual std::chrono::milliseconds commit_interval() const { return std::chrono::milliseconds(0); }
  /// Partitions taken away from this member: forget what belongs to them. The runner has flushed the
  /// stage's held-back state and committed what it processed from them just before.
  virtual void on_revoked(const std::vector<log::TopicPartition>& partitions) {}
  /// Partitions given to this member (the first assignment included): load what belongs to them. Called
  /// inside a poll, before any record of them is processed.
  virtual void on_assigned(const std::vector<log::TopicPartition>& partitions) {}
  /// Called after every poll: whether this member's input is caught up (it has partitions and no lag).
  virtual void observe_input(bool caught_up) {}
  /// True while work is in flight off the runner's thread whose results the stage will still write (the
  /// score stage's warm-up model, and the events it holds for it): a draining runner keeps ticking until it
  /// is done.
  virtual bool busy() const { return false; }
  /// `count` input records were skipped: the log evicted them before this stage read them (only a stage
  /// whose descriptor says may_lag). The stage counts them as it counts what it could not handle.
  virtual void skipped(int64_t count) {}
  /// Called from any thread by StageRunner::request_stop: a stage that may wait inside process() (the sink
  /// retrying an unreachable store) gives up the wait and throws, so the runner stops without committing.
  virtual void interrupt() {}
};

/// Knobs of the stage loop.
struct RunnerOptions {
  std::string group;                           ///< consumer group; default "fleettwin.<stage>"
  std::size_t max_batch = 5000;                ///< records per batch at most
  std::chrono::milliseconds batch_window{50};  ///< keep polling this long to fill a batch
  std::chrono::milliseconds poll_timeout{100};
  std::chrono::milliseconds tick_interval{1000};
  std::chrono::milliseconds flush_timeout{30000};
  /// A draining runner whose input is done waits this long for work its stage does off its thread (the
  /// score stage's first model), then tells the stage to stop it (Stage::interrupt): on a saturated machine a
  /// training at nice 10 could otherwise hold the end of a run for minutes.
  std::chrono::milliseconds drain_busy_limit{60000};
  /// A draining runner without partitions waits this long for some before it stops (see loop()).
  std::chrono::milliseconds drain_unassigned_limit{15000};
  /// Central (`--sites`): also read every edge site's copy of the inputs, `<site>.<topic>` (stages/sites.h).
  bool sites = false;
};

/// Hands `batch` to `stage` and returns the offsets that commit it. With `sites` (central, `--sites`) the
/// records of `<site>.<topic>` are renamed to `<topic>` in place, with their site as a header
/// (stages/sites.h), after their offsets were taken: the offsets are the real topics', and `batch` is left as
/// the stage saw it. Throws what the stage throws.
log::Offsets process_batch(Stage& stage, std::vector<log::Record>& batch, log::Producer& out, bool sites);

/// Runs one stage on its own thread as the loop of DESIGN.md §1: poll a batch, process it, flush the outputs
/// and wait for their acknowledgement, then commit the input offsets. A failed flush or an exception from
/// the stage stops the loop without committing, so the batch is replayed by whoever takes over. Exports
/// records in/out, batch latency, lag and errors as metrics labelled with the stage name.
class StageRunner {
 public:
  StageRunner(std::unique_ptr<Stage> stage, log::Log& log, core::Metrics& metrics,
              RunnerOptions options = {});
  ~StageRunner();
  StageRunner(const StageRunner&) = delete;
  StageRunner& operator=(const StageRunner&) = delete;

  void start();
  /// Finish the current batch, flush, commit, leave the group.
  void request_stop();
  /// Keep going until the input is fully consumed (poll empty and lag 0), then stop as request_stop.
  void request_drain();
  void join();
  bool running() const { return _running.load(); }
  /// Set when the loop ended on an error; the text says why.
  std::string error() const;
  int64_t lag() const { return _lag->value(); }
  /// Whether the stage's consumer holds partitions: before its first assignment (a role waiting for its
  /// group), lag() means nothing yet.
  bool has_partitions() const { return _has_partitions.load(); }
  /// Records this stage has read from its input topics so far.
  int64_t records_in() const { return _in->value(); }
  /// Whether the last commit of its input failed for now (the broker away) and is being retried.
  bool commit_retrying() const { return _commit_failing->value() != 0; }
  Stage& stage() { return *_stage; }

 private:
  void run();
  void loop();
  /// Whether a draining runner whose input is done may stop: its stage is not busy, or was busy too long
  /// (then told to stop, and asked again on the next pass).
  bool drained(std::chrono::steady_clock::time_point now);
  /// Whether a draining runner holds partitions, or has held none for drain_unassigned_limit.
  bool assigned_or_given_up(std::chrono::steady_clock::time_point now);
  /// Polls into `batch` until it is full or `window_end` passed, and reports what the consumer skipped. A
  /// revoke during a poll drops the batch's records of those partitions (loop()'s rebalance listener).
  void fill_batch(log::Consumer& consumer, std::vector<log::Record>& batch,
                  std::chrono::steady_clock::time_point window_end);
  /// Commits `pending` and clears it; returns false, keeping it, when the broker did not take the commit for
  /// now (TransientLogError): the next attempt is after a backoff of 1 s doubling to 30 s, unless
  /// `now_or_never` (stopping), and until then the stage goes on processing with the offsets held (they only
  /// grow: a later commit covers every record before it). Other errors are thrown.
  bool commit_or_retry(log::Consumer& consumer, log::Offsets& pending, bool now_or_never);
  /// Waits until the log acknowledged every output of `out`, so the input behind them may be committed.
  /// Records still in flight at flush_timeout, none failed (the broker is away: librdkafka retries them until
  /// its message.timeout.ms), are waited for again, so an outage longer than flush_timeout holds the stage
  /// (it commits nothing meanwhile) instead of stopping it. Throws log::LogError (`what`) when a record
  /// failed, or when the runner is asked to stop while records are in flight: the input is then replayed.
  void flush_outputs(log::Producer& out, const char* what);

  std::unique_ptr<Stage> _stage;
  log::Log& _log;
  RunnerOptions _options;
  std::thread _thread;
  std::atomic<bool> _stop{false};
  std::atomic<bool> _drain{false};
  std::atomic<bool> _running{false};
  std::atomic<bool> _has_partitions{false};
  mutable std::mutex _error_mu;
  std::string _error;
  core::Counter* _in;
  core::Counter* _out;
  core::Counter* _batches;
  core::Counter* _errors;
  core::Counter* _skipped;
  int64_t _skipped_seen = 0;  ///< the consumer's skipped() already reported (runner thread)
  std::chrono::steady_clock::time_point _unassigned_since{};  ///< draining without partitions since
  std::chrono::steady_clock::time_point _busy_since{};  ///< draining, input done, stage still busy since
  core::Gauge* _lag;
  core::Gauge* _batch_us;
  core::Counter* _commit_retries;
  core::Gauge* _commit_failing;
  std::chrono::milliseconds _commit_backoff{0};              ///< runner thread
  std::chrono::steady_clock::time_point _commit_retry_at{};  ///< no commit before this (backing off)
};

/// Counts what a stage writes, per topic, and forwards to the real producer.
class CountingProducer final : public log::Producer {
 public:
  CountingProducer(log::Producer& inner, core::Counter& out) : _inner(inner), _out(out) {}
  void send(log::OutRecord record, DeliveryCallback on_delivery) override {
    _out.add();
    _inner.send(std::move(record), std::move(on_delivery));
  }
  int64_t flush(std::chrono::milliseconds timeout) override { return _inner.flush(timeout); }
  int64_t unacknowledged() const override { return _inner.unacknowledged(); }

 private:
  log::Producer& _inner;
  core::Counter& _out;
};

}  // namespace fleettwin::stages
