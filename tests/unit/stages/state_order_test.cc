// The runner writes a stage's held-back state (Stage::flush_state) only once every output sent before it is
// acknowledged. Killed between the two, the saved state must be behind the outputs, never ahead: a state that
// says a window closed (aggregate) or a command expired (twin), saved past the result or the answer lost in
// flight, makes the replayed input find that work done, and that output is never written again.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "log/memory/memory_log.h"
#include "stages/stage.h"

using namespace fleettwin;
using namespace std::chrono_literals;

namespace {

/// What a producer of OrderLog did, in order: the topic of each send, and "flush" for each flush. Shared by
/// the runner's thread (which writes) and the test (which reads after the runner joined).
struct Steps {
  std::mutex mutex;
  std::vector<std::string> steps;
  bool refuse_outputs = false;  ///< flushes report every record sent to "out" since the last flush as failed
  void add(std::string step) {
    std::lock_guard lock(mutex);
    steps.push_back(std::move(step));
  }
};

/// Records the order of sends and flushes, forwarding to the memory log's producer; with refuse_outputs the
/// records sent to "out" fail for good (not in flight: no retry can bring them).
class OrderProducer final : public log::Producer {
 public:
  OrderProducer(std::unique_ptr<log::Producer> inner, Steps& steps)
      : _inner(std::move(inner)), _steps(steps) {}
  void send(log::OutRecord record, DeliveryCallback on_delivery) override {
    _steps.add(record.topic);
    if (record.topic == "out") ++_outputs;
    _inner->send(std::move(record), std::move(on_delivery));
  }
  int64_t flush(std::chrono::milliseconds timeout) override {
    _steps.add("flush");
    const int64_t failed = _inner->flush(timeout);
    const int64_t refused = _steps.refuse_outputs ? _outputs : 0;
    _outputs = 0;
    return failed + refused;
  }
  int64_t unacknowledged() const override { return _inner->unacknowledged(); }

 private:
  std::unique_ptr<log::Producer> _inner;
  Steps& _steps;
  int64_t _outputs = 0;  ///< sent to "out" since the last flush
};

/// The memory log, durable as Kafka is (so the runner holds its commits for the stage's state), whose
/// producers record what they do.
class OrderLog final : public log::Log {
 public:
  explicit OrderLog(Steps& steps) : _steps(steps) {}
  void create_topic(const std::string& name, const log::TopicConfig& config) override {
    _inner.create_topic(name, config);
  }
  std::unique_ptr<log::Producer> producer() override {
    return std::make_unique<OrderProducer>(_inner.producer(), _steps);
  }
  std::unique_ptr<log::Consumer> consumer(const std::string& group) override {
    return _inner.consumer(group);
  }
  std::vector<int64_t> end_offsets(const std::string& topic) override { return _inner.end_offsets(topic); }
  std::vector<int64_t> committed_offsets(const std::string& group, const std::string& topic) override {
    return _inner.committed_offsets(group, topic);
  }
  bool durable() const override { return true; }
  log::MemoryLog& inner() { return _inner; }

 private:
  log::MemoryLog _inner;
  Steps& _steps;
};

/// Copies each input record to "out" and, at each flush_state, writes one record to "state" when it
/// processed something since the last: a stage that saves state beside its outputs, as aggregate and twin.
class StatefulStage final : public stages::Stage {
 public:
  explicit StatefulStage(std::chrono::milliseconds commit_interval) : _commit_interval(commit_interval) {}
  const stages::StageDescriptor& descriptor() const override {
    static const stages::StageDescriptor d{.name = "stateful",
                                           .inputs = {"in"},
                                           .outputs = {"out", "state"},
                                           .config_keys = {},
                                           .description = "copies its input and saves a state"};
    return d;
  }
  void process(const std::vector<log::Record>& batch, log::Producer& out) override {
    for (const auto& r : batch) out.send(log::OutRecord{"out", r.key, r.value});
    _dirty = _dirty || !batch.empty();
  }
  void flush_state(log::Producer& out) override {
    if (!std::exchange(_dirty, false)) return;
    out.send(log::OutRecord{"state", "s", "after " + std::to_string(++_flushes)});
  }
  std::chrono::milliseconds commit_interval() const override { return _commit_interval; }

 private:
  std::chrono::milliseconds _commit_interval;
  bool _dirty = false;
  int _flushes = 0;
};

void fill(log::MemoryLog& log, int records) {
  for (const char* topic : {"in", "out", "state"}) log.create_topic(topic, {.partitions = 2});
  auto p = log.producer();
  for (int i = 0; i < records; ++i)
    p->send(log::OutRecord{"in", "k" + std::to_string(i % 7), std::to_string(i)});
  ASSERT_EQ(p->flush(5s), 0);
}

/// Runs the stage over "in" until it is drained (or fails); the runner's error.
std::string run(OrderLog& log, std::chrono::milliseconds commit_interval) {
  core::Metrics metrics;
  stages::RunnerOptions ro;
  ro.max_batch = 50;
  ro.batch_window = 0ms;
  ro.flush_timeout = 1s;
  stages::StageRunner runner(std::make_unique<StatefulStage>(commit_interval), log, metrics, ro);
  runner.start();
  runner.request_drain();
  runner.join();
  return runner.error();
}

}  // namespace

// Every state record goes out after a flush that followed the last output before it, whether the stage
// commits after each batch or holds its commits for an interval.
TEST(StageStateOrder, AStageStateGoesOutOnlyOnceTheOutputsBeforeItAreAcknowledged) {
  for (const auto interval : {0ms, 20ms}) {
    Steps steps;
    OrderLog log(steps);
    fill(log.inner(), 1000);
    ASSERT_EQ(run(log, interval), "");
    int states = 0;
    bool output_unflushed = false;  // an output sent and no flush since
    for (const auto& step : steps.steps) {
      if (step == "out") output_unflushed = true;
      if (step == "flush") output_unflushed = false;
      if (step != "state") continue;
      ++states;
      EXPECT_FALSE(output_unflushed)
          << "a state sent while outputs before it were not acknowledged, interval " << interval.count()
          << " ms";
    }
    EXPECT_GT(states, 0) << "the stage saved its state";
    int64_t outputs = 0;
    for (const auto e : log.end_offsets("out")) outputs += e;
    EXPECT_EQ(outputs, 1000);
  }
}

// Outputs the log refused for good: the stage's state is not written at all, and the input is not committed
// (the runner fails, and whoever takes the partitions replays the batch).
TEST(StageStateOrder, OutputsRefusedForGoodLeaveTheStateUnwrittenAndTheInputUncommitted) {
  Steps steps;
  steps.refuse_outputs = true;
  OrderLog log(steps);
  fill(log.inner(), 200);
  EXPECT_NE(run(log, 0ms), "") << "the runner reports the refused outputs";
  EXPECT_EQ(std::count(steps.steps.begin(), steps.steps.end(), "state"), 0);
  int64_t committed = 0;
  for (const auto c : log.committed_offsets("fleettwin.stateful", "in")) committed += std::max<int64_t>(0, c);
  EXPECT_EQ(committed, 0);
}
