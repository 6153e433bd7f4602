#include "stages/stage.h"
#include "core/metric_catalog.h"
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

  // Flush held-back state and outputs, wait for their acknowledgement, then commit what was processed.
  auto commit = [&] {
    _stage->flush_state(out);
    if (const int64_t failed = out.flush(_options.flush_timeout); failed != 0)
      throw log::LogError(std::to_string(failed) +
                          " output records were not acknowledged; input not committed");
    if (pending.empty()) return;
    consumer->commit(pending);
    pending.clear();
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
    _stage->flush_state(out);
    if (out.flush(_options.flush_timeout) != 0)
      throw log::LogError("outputs not acknowledged during a rebalance");
    if (!theirs.empty()) consumer->commit(theirs);
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
        if (out.flush(_options.flush_timeout) != 0)
          throw log::LogError("output records were not acknowledged");
        consumer->commit(pending);
        pending.clear();
        _batches->add();
      }
      if (_has_partitions) _unassigned_since = {};
      if (_drain && idle && pending.empty() && assigned_or_given_up(now) && drained(now)) break;
    }
    commit();  // stopping: finish what was processed
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
