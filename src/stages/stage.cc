#include "stages/stage.h"
#include "core/metric_catalog.h"
#include "log/transient_error.h"
#include "stages/sites.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <algorithm>

namespace fleettwin::stages {

StageRunner::StageRunner(std::unique_ptr<Stage> stage, log::Log& log, core::Metrics& metrics,
                         RunnerOptions options)
    : _stage(std::move(stage)), _log(log), _options(std::move(options)) {
  const auto& name = _stage->descriptor().name;
  if (_options.group.empty()) _options.group = "fleettwin." + name;
  const std::string labels = core::metric::stage_label(name);
  _in = &metrics.counter(core::metric::kRecordsIn, labels);
  _out =
      &metrics.counter("fleettwin_records_out_total", "Records a stage wrote to its output topics", labels);
  _batches = &metrics.counter("fleettwin_batches_total", "Batches a stage processed and committed", labels);
  _errors =
      &metrics.counter("fleettwin_stage_errors_total", "Batches that failed and were not committed", labels);
  _skipped = &metrics.counter(core::metric::kRecordsSkipped, labels);
  _lag = &metrics.gauge(core::metric::kConsumerLag, labels);
  _batch_us =
      &metrics.gauge("fleettwin_batch_latency_us", "Wall time of the last batch, poll to commit", labels);
  _commit_retries = &metrics.counter(
      "fleettwin_commit_retries_total",
      "Input commits the broker did not take in time (away or restarting), tried again after a backoff",
      labels);
  _commit_failing =
      &metrics.gauge("fleettwin_commit_failing",
                     "1 while a stage's input commits fail and are being retried, else 0", labels);
}

StageRunner::~StageRunner() {
  request_stop();
  join();
}

void StageRunner::start() {
  _running = true;
  _thread = std::thread([this] { run(); });
}

void StageRunner::request_stop() {
  _stop = true;
  _stage->interrupt();
}
void StageRunner::request_drain() { _drain = true; }

void StageRunner::join() {
  if (_thread.joinable()) _thread.join();
}

std::string StageRunner::error() const {
  std::lock_guard lock(_error_mu);
  return _error;
}

void StageRunner::run() {
  // Named threads make `top -H` and profiles readable (15 characters at most).
  pthread_setname_np(pthread_self(), ("ft-" + _stage->descriptor().name).substr(0, 15).c_str());
  try {
    loop();
  } catch (const std::exception& e) {
    _errors->add();
    std::lock_guard lock(_error_mu);
    _error = e.what();
    spdlog::error("stage {} stopped: {}", _stage->descriptor().name, e.what());
  }
  _running = false;
}

namespace {
void merge(log::Offsets& into, const log::Offsets& more) {
  for (const auto& [tp, offset] : more) {
    auto& o = into[tp];
    o = std::max(o, offset);
  }
}
}  // namespace

log::Offsets process_batch(Stage& stage, std::vector<log::Record>& batch, log::Producer& out, bool sites) {
  // The offsets first, while the records still name their real topics: the stage's view renames them in
  // place (a copy of every batch on central's hot path cost as much as the rename saves). Merged into what
  // the runner commits only once process() returned: a batch the stage threw on is not committed.
  auto next = log::next_offsets(batch);
  if (sites) strip_site_topics(batch);
  stage.process(batch, out);
  stage.limit_commit(next);
  return next;
}

void StageRunner::fill_batch(log::Consumer& consumer, std::vector<log::Record>& batch,
                             std::chrono::steady_clock::time_point window_end) {
  // Fill the batch for up to batch_window: larger batches amortise flushes, commits and store transactions.
  while (batch.size() < _options.max_batch) {
    auto part = consumer.poll(_options.max_batch - batch.size(),
                              batch.empty() ? _options.poll_timeout : std::chrono::milliseconds(5));
    if (part.empty()) break;
    if (batch.empty()) {
      batch = std::move(part);
    } else {
      batch.insert(batch.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    }
    if (std::chrono::steady_clock::now() >= window_end) break;
  }
  if (const int64_t skipped = consumer.skipped(); skipped != _skipped_seen) {
    _skipped->add(skipped - _skipped_seen);
    _stage->skipped(skipped - _skipped_seen);
    _skipped_seen = skipped;
  }
}

bool StageRunner::commit_or_retry(log::Consumer& consumer, log::Offsets& pending, bool now_or_never) {
  const auto now = std::chrono::steady_clock::now();
  if (!now_or_never && now < _commit_retry_at) return false;
  try {
    consumer.commit(pending);
  } catch (const log::TransientLogError& e) {
    // A broker that restarts answers no commit for a while; stopping would only replay what this member
    // processed. The offsets stay pending and the next commit, a superset, is tried after the backoff.
    _commit_backoff =
        std::clamp(_commit_backoff * 2, std::chrono::milliseconds(1000), std::chrono::milliseconds(30'000));
    _commit_retry_at = now + _commit_backoff;
    _commit_retries->add();
    _commit_failing->set(1);
    spdlog::warn("stage {}: {}; processing goes on, commit again in {} ms", _stage->descriptor().name,
                 e.what(), _commit_backoff.count());
    return false;
  }
  if (_commit_failing->value() != 0)
    spdlog::info("stage {}: commit succeeded again", _stage->descriptor().name);
  _commit_backoff = std::chrono::milliseconds(0);
  _commit_retry_at = {};
  _commit_failing->set(0);
  pending.clear();
  return true;
}

void StageRunner::flush_outputs(log::Producer& out, const char* what) {
  bool waited = false;
  for (int64_t failed = out.flush(_options.flush_timeout); failed != 0;
       failed = out.flush(_options.flush_timeout)) {
    const int64_t waiting = out.unacknowledged();
    if (waiting != failed || _stop) throw log::LogError(std::to_string(failed) + " " + what);
    // Counted as a commit held back: the progress line says "commit retrying" and /metrics
    // fleettwin_commit_failing, until the outputs are acknowledged.
    waited = true;
    _commit_retries->add();
    _commit_failing->set(1);
    spdlog::warn(
        "stage {}: {} output records not acknowledged within {} s (the log is away); waiting on, "
        "nothing committed meanwhile",
        _stage->descriptor().name, waiting, _options.flush_timeout.count() / 1000);
  }
  if (waited && _commit_retry_at == std::chrono::steady_clock::time_point{}) {
    spdlog::info("stage {}: outputs acknowledged again", _stage->descriptor().name);
    _commit_failing->set(0);
  }
}

bool StageRunner::assigned_or_given_up(std::chrono::steady_clock::time_point now) {
  // No partitions has no lag: before its group's first assignment, or while a rebalance moves partitions,
  // a member would look caught up and a drain would stop with nothing read (seen in `up --kafka`, whose
  // groups are new). Wait for partitions; a member that gets none (more copies than partitions) stops after
  // the limit.
  if (_has_partitions) return true;
  if (_unassigned_since == std::chrono::steady_clock::time_point{}) _unassigned_since = now;
  return now - _unassigned_since >= _options.drain_unassigned_limit;
}

bool StageRunner::drained(std::chrono::steady_clock::time_point now) {
  if (!_stage->busy()) return true;
  if (_busy_since == std::chrono::steady_clock::time_point{}) {
    _busy_since = now;
  } else if (now - _busy_since >= _options.drain_busy_limit) {
    spdlog::warn("stage {}: still busy {} s after its input was done; stopping that work",
                 _stage->descriptor().name, _options.drain_busy_limit.count() / 1000);
    _stage->interrupt();
    _busy_since = now;  // warn again only if it does not stop
  }
  return false;
}

void StageRunner::loop() {
  auto consumer = _log.consumer(_options.group);
  auto producer = _log.producer();
  CountingProducer out(*producer, *_out);
  const auto commit_interval = _stage->commit_interval();
  const bool hold_commits = _log.durable();
  auto next_tick = std::chrono::steady_clock::now() + _options.tick_interval;
  auto next_commit = std::chrono::steady_clock::now() + commit_interval;
  log::Offsets pending;  // processed, not yet committed
  auto batch_started = std::chrono::steady_clock::now();
  std::vector<log::Record> batch;

  // The outputs sent so far are acknowledged before the stage writes the state it held back, and that state
  // before anything is committed. Killed in between, a stage's saved state must be behind its outputs, never
  // ahead: a state that says a window closed or a command expired, saved past the result or the answer lost
  // in flight, makes the replayed input find that work done, and the output is never written (seen as missing
  // windows in aggregate_kill_integration under load). One more wait per commit, only where a stage saves
  // state: with nothing in flight a flush returns at once.
  auto flush_state = [&](const char* what) {
    flush_outputs(out, what);
    _stage->flush_state(out);
    flush_outputs(out, what);
  };
  // Flush held-back state and outputs, wait for their acknowledgement, then commit what was processed.
  auto commit = [&](bool now_or_never = false) {
    flush_state("output records were not acknowledged; input not committed");
    if (pending.empty() || !commit_or_retry(*consumer, pending, now_or_never)) return;
    _batches->add();
    _batch_us->set(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                         batch_started)
                       .count());
  };

  // Partitions taken away (another member joined, or this one is leaving): what was processed from them is
  // committed now, while this member still owns them; what was polled but not processed is dropped, so it is
  // processed once, by the new owner.
  bool failed = false;  // after an error nothing more is committed
  auto on_revoked = [&](const std::vector<log::TopicPartition>& tps) {
    // Polled from them in this batch so far: their new owner processes them. Dropped now, at the revoke, not
    // once the batch is full: an eager rebalance (the range assignor) revokes every partition and may hand
    // them straight back within the same batch, and records polled after that are this member's to process
    // (dropping those too lost them: their offsets were committed with the later records').
    std::erase_if(batch, [&](const log::Record& r) {
      return std::find(tps.begin(), tps.end(), log::TopicPartition{r.topic, r.partition}) != tps.end();
    });
    if (failed) return;
    log::Offsets theirs;
    for (const auto& tp : tps) {
      if (auto it = pending.find(tp); it != pending.end()) {
        theirs.insert(*it);
        pending.erase(it);
      }
    }
    flush_state("outputs not acknowledged during a rebalance");
    // A commit the broker does not take now is not retried: the partitions are leaving, and their new owner
    // replays from the previous commit (the stores are idempotent by (car, seq)).
    if (!theirs.empty() && !commit_or_retry(*consumer, theirs, true))
      spdlog::warn("stage {}: revoked partitions replay from their previous commit",
                   _stage->descriptor().name);
    _stage->on_revoked(tps);
  };
  auto on_assigned = [&](const std::vector<log::TopicPartition>& tps) {
    if (!failed) _stage->on_assigned(tps);
  };
  // Which groups may lag is the stage's to say (its descriptor), not the log's: see StageDescriptor::may_lag.
  if (_stage->descriptor().may_lag)
    for (const auto& topic : _stage->descriptor().inputs) _log.allow_lag(_options.group, topic);
  const auto& inputs = _stage->descriptor().inputs;
  consumer->subscribe(_options.sites ? with_site_topics(inputs) : inputs,
                      log::RebalanceListener{on_assigned, on_revoked});

  try {
    while (!_stop) {
      batch.clear();
      const auto started = std::chrono::steady_clock::now();
      if (pending.empty()) batch_started = started;
      fill_batch(*consumer, batch, started + _options.batch_window);
      if (!batch.empty()) {
        _in->add(static_cast<int64_t>(batch.size()));
        merge(pending, process_batch(*_stage, batch, out, _options.sites));
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_tick) {
        _stage->tick(out);
        next_tick = now + _options.tick_interval;
      }
      _lag->set(consumer->lag());
      _has_partitions = !consumer->assignment().empty();
      _stage->observe_input(_has_partitions && _lag->value() == 0);
      const bool idle = batch.empty() && _lag->value() == 0;
      if (commit_interval.count() == 0 || now >= next_commit || idle) {
        commit();
        next_commit = now + commit_interval;
      } else if (!hold_commits && !pending.empty()) {
        // A log that does not outlive the process never replays, so held-back state need not pin it: commit
        // what is written and let the partitions trim (the state still goes out at the interval, and on
        // stop).
        flush_outputs(out, "output records were not acknowledged");
        if (commit_or_retry(*consumer, pending, false)) _batches->add();
      }
      if (_has_partitions) _unassigned_since = {};
      if (_drain && idle && pending.empty() && assigned_or_given_up(now) && drained(now)) break;
    }
    commit(true);  // stopping: finish what was processed (if the broker does not take it, it is replayed)
  } catch (...) {
    // Leave the group without committing: the batch is replayed by whoever takes the partitions.
    failed = true;
    consumer->close();
    throw;
  }
  // Leaving the group hands the partitions to the others.
  consumer->close();
}

}  // namespace fleettwin::stages
