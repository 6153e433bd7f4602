// The sink stage during a store outage: transient write failures are retried with backoff (counted in
// fleettwin_sink_store_retries_total) until the store answers, other failures stop it at once, and a stop
// request ends an outage wait without the batch being committed. Also: the sink runs the store's history
// retention after a batch, at most once per interval of its clock.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "codec/avro.h"
#include "core/clock.h"
#include "core/topics.h"
#include "log/memory/memory_log.h"
#include "stages/sink/sink_stage.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

using namespace fleettwin;
using namespace std::chrono_literals;
namespace t = core::topics;

namespace {

/// What an unreachable server's store throws.
struct Unreachable : std::runtime_error {
  Unreachable() : std::runtime_error("server unreachable") {}
};

/// A real SqliteStore whose writes fail while `outage` is set (or for the first `fail_writes` writes):
/// with Unreachable (which transient_failure accepts) or, if `permanent`, a plain runtime_error.
class OutageStore final : public store::TwinStore {
 public:
  explicit OutageStore(const std::string& path) : _inner(path) {}
  std::atomic<bool> outage{false};
  std::atomic<int> fail_writes{0};
  std::atomic<int> write_calls{0};
  bool permanent = false;

  store::WriteResult write(const store::WriteBatch& b) override {
    ++write_calls;
    if (outage || fail_writes > 0) {
      --fail_writes;
      if (permanent) throw std::runtime_error("disk full");
      throw Unreachable();
    }
    return _inner.write(b);
  }
  bool transient_failure(const std::exception& e) const override {
    return dynamic_cast<const Unreachable*>(&e) != nullptr;
  }
  std::optional<core::Twin> get_twin(const std::string& car) override { return _inner.get_twin(car); }
  std::vector<core::Twin> list_twins(const store::TwinQuery& q) override { return _inner.list_twins(q); }
  std::vector<store::TelemetryRow> history(const std::string& car, int64_t from_ms, int64_t to_ms,
                                           int64_t limit) override {
    return _inner.history(car, from_ms, to_ms, limit);
  }
  std::vector<core::Alert> alerts(const std::string& car, int64_t limit) override {
    return _inner.alerts(car, limit);
  }
  store::HistoryStats history_stats() override { return _inner.history_stats(); }
  std::vector<std::pair<std::string, int64_t>> max_seq_per_car() override { return _inner.max_seq_per_car(); }
  std::vector<store::OldestRow> oldest_per_car() override { return _inner.oldest_per_car(); }
  store::FleetSummary fleet_summary(int64_t now_ms) override { return _inner.fleet_summary(now_ms); }
  std::vector<store::CarScore> top_by_score(int64_t n) override { return _inner.top_by_score(n); }
  std::vector<store::HourlyAggregate> hourly(const std::string& car, std::string_view signal, int64_t from_ms,
                                             int64_t to_ms) override {
    return _inner.hourly(car, signal, from_ms, to_ms);
  }
  std::vector<store::AlertsPerHour> alerts_per_hour(int64_t from_ms, int64_t to_ms) override {
    return _inner.alerts_per_hour(from_ms, to_ms);
  }
  store::RetentionResult enforce_retention(int64_t cutoff_ms) override {
    return _inner.enforce_retention(cutoff_ms);
  }
  store::RetentionResult enforce_aggregates_retention(int64_t cutoff_ms) override {
    return _inner.enforce_aggregates_retention(cutoff_ms);
  }
  void upsert_aggregates(std::span<const store::AggregateRow> rows) override {
    _inner.upsert_aggregates(rows);
  }
  std::vector<store::AggregateRow> aggregates(const store::AggregateQuery& q) const override {
    return _inner.aggregates(q);
  }
  std::optional<core::Command> get_command(const std::string& id) override { return _inner.get_command(id); }
  std::vector<core::Command> commands(const std::string& car, int64_t limit) override {
    return _inner.commands(car, limit);
  }
  bool ack_alert(const std::string& id) override { return _inner.ack_alert(id); }
  std::optional<core::Alert> get_alert(const std::string& id) override { return _inner.get_alert(id); }
  bool set_alert_feedback(const std::string& id, const std::string& label, const std::string& note,
                          int64_t ts) override {
    return _inner.set_alert_feedback(id, label, note, ts);
  }
  core::FeedbackCounts feedback_counts(const std::string& version) override {
    return _inner.feedback_counts(version);
  }

 private:
  store::SqliteStore _inner;
};

core::Telemetry reading(int64_t seq) {
  core::Telemetry m;
  m.car = "car-00042";
  m.seq = seq;
  m.ts = 1'700'000'000'000 + seq * 1000;
  m.lat = 48.1;
  m.lon = 11.5;
  for (std::size_t i = 0; i < core::kSignalCount; ++i) m.values[i] = core::kSignals[i].min;
  return m;
}

std::string avro(int64_t seq) {
  std::string v;
  codec::encode_avro_telemetry(reading(seq), 1, v);
  return v;
}

class NullProducer final : public log::Producer {
 public:
  void send(log::OutRecord, DeliveryCallback) override {}
  int64_t flush(std::chrono::milliseconds) override { return 0; }
};

std::vector<log::Record> batch_of(int64_t first, int64_t last) {
  std::vector<log::Record> batch;
  for (int64_t seq = first; seq <= last; ++seq) {
    log::Record r;
    r.topic = t::kTelemetry;
    r.key = "car-00042";
    r.value = avro(seq);
    r.timestamp_ms = 1;
    batch.push_back(r);
  }
  return batch;
}

/// An OutageStore in a directory of its own, and what a sink stage needs besides.
class SinkRetry : public ::testing::Test {
 protected:
  const fleettwin::testing::TempDir dir{"sink-retry"};
  core::Metrics metrics;
  core::Histogram latency;
  std::unique_ptr<OutageStore> owned_store = std::make_unique<OutageStore>(dir.file("s.db"));
  OutageStore* const s = owned_store.get();

  /// A sink stage that owns the store from now on: `s` lives as long as the stage.
  std::unique_ptr<stages::SinkStage> sink(stages::SinkStage::RetryOptions retry) {
    return std::make_unique<stages::SinkStage>(std::move(owned_store), metrics, latency,
                                               registry::TelemetryReader(), retry);
  }
};

}  // namespace

TEST_F(SinkRetry, TransientFailuresAreRetriedUntilTheStoreAnswers) {
  s->fail_writes = 3;
  const auto stage = sink({1ms, 4ms});
  NullProducer out;
  stage->process(batch_of(1, 5), out);
  EXPECT_EQ(s->write_calls, 4);
  EXPECT_EQ(metrics.value("fleettwin_sink_store_retries_total"), 3);
  EXPECT_EQ(metrics.value("fleettwin_telemetry_stored_total"), 5);
  EXPECT_EQ(s->history_stats().rows, 5);
}

TEST_F(SinkRetry, PermanentFailureThrowsWithoutRetrying) {
  s->fail_writes = 1;
  s->permanent = true;
  const auto stage = sink({1ms, 4ms});
  NullProducer out;
  EXPECT_THROW(stage->process(batch_of(1, 2), out), std::runtime_error);
  EXPECT_EQ(s->write_calls, 1);
  EXPECT_EQ(metrics.value("fleettwin_sink_store_retries_total"), 0);
}

TEST_F(SinkRetry, StopDuringAnOutageEndsTheRunnerWithoutCommitting) {
  log::MemoryLog mlog;
  for (const auto& topic : stages::SinkStage::static_descriptor().inputs)
    mlog.create_topic(topic, {.partitions = 1});
  auto p = mlog.producer();
  for (int64_t seq = 1; seq <= 3; ++seq)
    p->send(log::OutRecord{t::kTelemetry, "car-00042", avro(seq), {}, 0, 0});
  p->flush(1s);
  s->outage = true;
  // A backoff far longer than the test's timeout: only interrupt() can end the wait.
  stages::StageRunner runner(sink({1h, 1h}), mlog, metrics);
  runner.start();
  while (s->write_calls.load() == 0) std::this_thread::sleep_for(5ms);
  runner.request_stop();
  runner.join();
  EXPECT_EQ(runner.error(), "sink: stopped while the store was unreachable");
  EXPECT_EQ(mlog.committed("fleettwin.sink", {t::kTelemetry, 0}), -1) << "a batch never stored was committed";
}

TEST_F(SinkRetry, RetentionRunsAfterABatchAtMostOncePerInterval) {
  constexpr int64_t kT0 = 1'700'000'000'000;  // reading(seq).ts is kT0 + seq * 1000
  core::SimClock clock(kT0 + 100'000);
  const auto stage = sink({1ms, 4ms});
  stage->set_retention({.history_ms = 10'000, .interval_ms = 60'000, .clock = &clock});
  NullProducer out;
  const std::string removed = "fleettwin_store_retention_removed_total{store=\"sqlite\"}";
  // The clock is ahead of the data (a replay): the cutoff follows the newest ts stored, kT0 + 60 s, so
  // it is kT0 + 50 s and seq 1-49 go (by the clock it would take every row).
  stage->process(batch_of(1, 60), out);
  EXPECT_EQ(s->history_stats().rows, 11);
  EXPECT_EQ(metrics.value(removed), 49);
  EXPECT_EQ(metrics.value("fleettwin_store_history_oldest_timestamp_seconds{store=\"sqlite\"}"),
            (kT0 + 50'000) / 1000);
  clock.advance_to(kT0 + 130'000);  // within the interval: no run, though seq 50-60 are old by now
  stage->process(batch_of(61, 70), out);
  EXPECT_EQ(s->history_stats().rows, 21);
  // Data now ahead of the clock (kT0 + 210 s > kT0 + 160 s): the clock bounds the cutoff, kT0 + 150 s, so
  // seq 50-70 go and 200-210 stay.
  clock.advance_to(kT0 + 160'000);
  stage->process(batch_of(200, 210), out);
  EXPECT_EQ(s->history_stats().rows, 11);
  EXPECT_EQ(metrics.value(removed), 70);
}

TEST_F(SinkRetry, RetentionRemovesAggregatesOlderThanTheirOwnRetention) {
  constexpr int64_t kT0 = 1'700'000'000'000;
  constexpr int64_t kHour = 3'600'000;
  core::SimClock clock(kT0 + 100'000);
  // Hourly windows of the 10 hours before kT0; the aggregates' retention is 4 h, the history's 10 s.
  std::vector<store::AggregateRow> windows;
  for (int64_t h = 1; h <= 10; ++h)
    windows.push_back({"summary_1h", "car-00042", kT0 - h * kHour, kT0 - (h - 1) * kHour, 1, true, 5, {}});
  s->upsert_aggregates(windows);
  const auto stage = sink({1ms, 4ms});
  stage->set_retention(
      {.history_ms = 10'000, .aggregates_ms = 4 * kHour, .interval_ms = 60'000, .clock = &clock});
  NullProducer out;
  // Base: the newest ts stored (kT0 + 60 s, before the clock); windows starting before kT0 + 60 s - 4 h go.
  stage->process(batch_of(1, 60), out);
  const auto kept = s->aggregates({.aggregate = "summary_1h"});
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.front().window_start_ms, kT0 - 3 * kHour);
  EXPECT_EQ(metrics.value("fleettwin_store_aggregates_removed_total{store=\"sqlite\"}"), 7);
  EXPECT_EQ(metrics.value("fleettwin_store_aggregates_oldest_timestamp_seconds{store=\"sqlite\"}"),
            (kT0 - 3 * kHour) / 1000);
  EXPECT_EQ(metrics.value("fleettwin_store_retention_removed_total{store=\"sqlite\"}"), 49);
  for (const char* data : {"history", "aggregates"}) {
    EXPECT_EQ(
        metrics.value(
            std::string("fleettwin_store_retention_last_run_timestamp_seconds{store=\"sqlite\",data=\"") +
            data + "\"}"),
        (kT0 + 100'000) / 1000)
        << data;
  }
}
