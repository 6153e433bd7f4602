// When a fault of `bench fleet --faults` has recovered (bench/scenarios/fleet_recovery.h), on pipelines
// simulated second by second: one that keeps up on a loaded machine (every latency far above the quiet
// steady minute's) recovers; one that stays stuck, stores slower than the cars publish, or stalls again
// right after draining its backlog does not.
#include "scenarios/fleet_recovery.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <utility>

namespace fleettwin::app::bench {
namespace {

constexpr int64_t kRate = 400;  // msg/s, the integration test's 400 cars at 1 s
constexpr int64_t kFrom = 90, kFaultStart = 100, kFaultEnd = 110, kCarsStop = 170, kStoreUntil = 400;

/// A pipeline in whole seconds: the cars publish kRate at the start of every second before kCarsStop; each
/// second t the store takes, oldest first and at t + 0.5 s, up to capacity(t) of the messages published at
/// least delay(t) seconds before.
struct Pipeline {
  std::function<int64_t(int64_t)> capacity;
  std::function<int64_t(int64_t)> delay = [](int64_t) { return 0; };

  std::map<int64_t, FlowSecond> run() const {
    std::map<int64_t, FlowSecond> flow;
    std::deque<std::pair<int64_t, int64_t>> queue;  // (publish second, messages)
    for (int64_t t = kFrom; t < kStoreUntil; ++t) {
      if (t < kCarsStop) {
        queue.emplace_back(t, kRate);
        flow[t].published += kRate;
      }
      const int64_t stored_ms = t * 1000 + 500;
      for (int64_t cap = capacity(t); cap > 0 && !queue.empty() && queue.front().first + delay(t) <= t;) {
        auto& [s, left] = queue.front();
        const int64_t n = std::min(cap, left);
        flow[t].stored += n;
        flow[s].last_stored_ms = std::max(flow[s].last_stored_ms, stored_ms);
        flow[s].max_latency_ms = std::max(flow[s].max_latency_ms, static_cast<double>(stored_ms - s * 1000));
        cap -= n;
        if ((left -= n) == 0) queue.pop_front();
      }
    }
    return flow;
  }
};

bool in_fault(int64_t t) { return t >= kFaultStart && t < kFaultEnd; }

Recovery measure(const Pipeline& p) {
  return measure_recovery(p.run(), kFaultStart * 1000, kFaultEnd * 1000 + 300, kCarsStop * 1000);
}

TEST(FleetRecovery, APipelineKeepingUpOnALoadedMachineRecoversWhenItsBacklogIsDrained) {
  // Quiet before the fault (0.5 s), loaded after it (3.5 s: seven times the quiet latency, which a bound of
  // twice the steady p99 never accepts); the sinks stopped for the fault, then draining at 1,500 msg/s.
  const Pipeline p{[](int64_t t) { return in_fault(t) ? 0 : 1500; },
                   [](int64_t t) { return t < kFaultStart ? 0 : 3; }};
  const auto flow = p.run();
  EXPECT_GT(flow.at(kFaultEnd + 10).max_latency_ms, 3000) << "the load the rule must tolerate";
  const Recovery r = measure(p);
  // The fault's backlog (seconds 100 to 110) is stored from 110.5 s to 113.5 s (second 110's messages, once
  // their 3 s have passed), after which the store takes 400 a second again.
  EXPECT_NEAR(r.recovery_s, 113.5 - 110.3, 1e-9);
  EXPECT_DOUBLE_EQ(r.max_latency_ms, 110'500 - 100'000) << "second 100's messages waited the longest";
}

TEST(FleetRecovery, NoFaultEffectRecoversAtOnce) {
  const Pipeline p{[](int64_t) { return 1000; }};
  const Recovery r = measure(p);
  EXPECT_NEAR(r.recovery_s, 0.2,
              1e-9);  // second 110's messages stored at 110.5 s, the fault ended at 110.3 s
  EXPECT_DOUBLE_EQ(r.max_latency_ms, 500);
}

TEST(FleetRecovery, APipelineStuckUntilTheCarsStopNeverRecovers) {
  const Pipeline p{[](int64_t t) { return t >= kFaultStart && t < kCarsStop ? 0 : 100'000; }};
  const Recovery r = measure(p);
  EXPECT_EQ(r.recovery_s, -1);
  EXPECT_GE(r.max_latency_ms, (kCarsStop - kFaultStart) * 1000) << "stored only in the final drain";
}

TEST(FleetRecovery, APipelineSlowerThanTheCarsNeverRecovers) {
  // After the fault it stores 300 msg/s of the 400 coming in: its backlog drains the fault's seconds late and
  // then grows for good.
  const Pipeline p{[](int64_t t) { return in_fault(t) ? 0 : t < kFaultStart ? 1000 : 300; }};
  EXPECT_EQ(measure(p).recovery_s, -1);
}

TEST(FleetRecovery, APipelineThatStallsAgainRightAfterItsDrainHasNotRecovered) {
  // The backlog drains in one burst as the fault ends, two seconds more are stored, then nothing until the
  // cars stop (a role in a crash loop): the burst itself does not count as keeping up.
  const Pipeline p{[](int64_t t) {
    if (in_fault(t) || (t > kFaultEnd + 2 && t < kCarsStop)) return int64_t{0};
    return int64_t{100'000};
  }};
  EXPECT_EQ(measure(p).recovery_s, -1);
}

TEST(FleetRecovery, AShortStallAfterTheDrainMovesTheRecoveryToWhenTheStoreKeepsUp) {
  // Drained at 110.5 s, then eight seconds without a write (112..119), then keeping up: no five-second window
  // from 111 to 115 sees 80% of its input stored; the one from 116 does, with the stall's backlog stored at
  // its end (so the rule may place a recovery up to a window early, never where nothing is stored).
  const Pipeline p{[](int64_t t) {
    if (in_fault(t) || (t >= 112 && t < 120)) return int64_t{0};
    return int64_t{100'000};
  }};
  const Recovery r = measure(p);
  EXPECT_NEAR(r.recovery_s, 116 - 110.3, 1e-9);
  EXPECT_DOUBLE_EQ(r.max_latency_ms, 110'500 - 100'000);  // second 100's, stored as the fault ended
}

}  // namespace
}  // namespace fleettwin::app::bench
