// Issue 19 item 1 for real: windows grouped by health status (`attribute: status`) on a Kafka 4.x broker, two
// `fleettwin aggregate` copies (the range assignor: a copy holds a partition's events and its scores), a
// `fleettwin score` role that trains its first model from the warm-up, and one aggregate copy SIGKILLed while
// it holds events waiting for their scores (Stage::limit_commit keeps their offsets uncommitted) and has
// windows counted (fleet.aggregates.state), then started again.
//
// Two fleets, one after the other. The first is scored and counted; the score role is stopped, and the second
// fleet's events reach the aggregate copies with no score to match: they are held. Copy A is killed then, and
// started again, and the score role too: it scores the second fleet, and the copies count it. The windows of
// each status must equal what the stored history says (each event of fleet.telemetry under the status of its
// own record on fleet.scores, core::score_status, `unknown` without one): every event counted once, under its
// own status, as a run without the kill would; and each window's statuses add up to the fleet's window.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "codec/avro.h"
#include "codec/schemas.h"
#include "core/topics.h"
#include "core/twin.h"
#include "log/kafka/kafka_log.h"
#include "support/process.h"
#include "support/roles.h"

using namespace std::chrono_literals;
using namespace fleettwin;
using namespace fleettwin::testing;
namespace t = core::topics;

namespace {

constexpr int64_t kMinute = 60'000;
using Counts = std::map<std::pair<std::string, int64_t>, int64_t>;  // (group, window start) -> events

using Topics = std::map<std::string, std::vector<log::Record>>;

/// Every record of `topics`, from their beginning, in a group of the test's own.
Topics read_topics(log::KafkaLog& klog, const std::vector<std::string>& topics) {
  auto consumer = klog.consumer("aggregate-status-check");
  consumer->subscribe(topics);
  Topics out;
  for (int empty = 0; empty < 10;) {
    auto batch = consumer->poll(10000, 500ms);
    empty = batch.empty() ? empty + 1 : 0;
    for (auto& r : batch) out[r.topic].push_back(std::move(r));
  }
  consumer->close();
  return out;
}

/// What the stored history says each status window holds: every event of fleet.telemetry (its car, ts and seq
/// are CarTelemetry's first fields) under the status of its car's score for that seq, else `unknown`. Also
/// the fleet's count per window (group "fleet").
Counts expected_counts(Topics& history) {
  std::map<std::pair<std::string, int64_t>, core::HealthStatus> status;  // (car, seq)
  for (const auto& r : history[t::kScores]) {
    codec::AnomalyScore s;
    std::string error;
    EXPECT_TRUE(codec::decode_avro_anomaly_score(r.value, s, nullptr, &error)) << error;
    if (!r.header("model.role"))
      status[{s.car, s.seq}] = core::score_status(s.score, s.threshold, s.in_alert);
  }
  Counts out;
  std::set<std::pair<std::string, int64_t>> seen;
  for (const auto& r : history[t::kTelemetry]) {
    int32_t id = 0;
    std::string_view body;
    EXPECT_TRUE(codec::read_confluent_header(r.value, id, body));
    codec::AvroReader reader(body);
    std::string_view car;
    int64_t ts = 0, seq = 0;
    EXPECT_TRUE(reader.read_string(car) && reader.read_long(ts) && reader.read_long(seq));
    EXPECT_TRUE(seen.emplace(std::string(car), seq).second) << "an event twice on fleet.telemetry";
    const int64_t start = ts - ts % kMinute;
    const auto it = status.find({std::string(car), seq});
    ++out[{std::string(core::to_string(it == status.end() ? core::HealthStatus::kUnknown : it->second)),
           start}];
    ++out[{"fleet", start}];
  }
  return out;
}

/// The results on fleet.aggregates against the history: each window written holds exactly the events the
/// history puts in it, a replayed result is the same bytes, and a window's statuses add up to the fleet's.
void check_windows(Topics& history) {
  const Counts expected = expected_counts(history);
  std::map<std::string, std::string> by_revision;  // key|revision -> the record's value
  std::map<std::pair<std::string, int64_t>, codec::AggregateResult> newest;  // (group, start)
  int64_t replayed = 0;
  for (const auto& r : history[t::kAggregates]) {
    codec::AggregateResult a;
    std::string error;
    ASSERT_TRUE(codec::decode_avro_aggregate_result(r.value, a, nullptr, &error)) << error;
    const auto [it, fresh] = by_revision.try_emplace(r.key + "|" + std::to_string(a.revision), r.value);
    if (!fresh) {
      ++replayed;
      EXPECT_EQ(it->second, r.value) << "a replay wrote another result for " << r.key;
    }
    EXPECT_EQ(a.revision, a.count) << r.key;  // a merge's revision is the count of events merged
    const auto [n, first] = newest.try_emplace({a.group, a.window_start}, a);
    if (!first && a.revision > n->second.revision) n->second = a;
  }
  // Every window written holds exactly the events the history puts in it.
  std::map<std::string, int64_t> checked;  // per group
  for (const auto& [key, r] : newest) {
    const auto want = expected.find(key);
    ASSERT_NE(want, expected.end()) << key.first << " " << key.second;
    EXPECT_EQ(r.count, want->second) << key.first << " window " << key.second;
    ++checked[key.first];
  }
  // Each window that every status it has events of has closed: the statuses add up to the fleet's.
  int64_t whole = 0;
  for (const auto& [key, count] : expected) {
    if (key.first != "fleet" || !newest.contains(key)) continue;
    int64_t sum = 0;
    bool closed = true;
    for (const char* s : {"ok", "warning", "anomaly", "unknown"}) {
      if (!expected.contains({s, key.second})) continue;
      const auto it = newest.find({s, key.second});
      closed = closed && it != newest.end();
      if (closed) sum += it->second.count;
    }
    if (!closed) continue;
    EXPECT_EQ(sum, newest.at(key).count) << "window " << key.second;
    ++whole;
  }
  std::string summary;
  for (const auto& [key, count] : expected)
    summary += key.first + "@" + std::to_string(key.second) + "=" + std::to_string(count) + " ";
  // ok and warning from the scores, unknown from the warm-up, anomaly from the failing cars' alerts.
  for (const char* s : {"ok", "warning", "anomaly", "unknown"})
    EXPECT_GT(checked[s], 0) << s << ": " << summary;
  EXPECT_GE(whole, 4) << summary;
  std::printf(
      "aggregate status kill: %zu windows checked (%lld ok, %lld warning, %lld anomaly, %lld unknown), "
      "%lld whole minutes, %lld results replayed identically\n",
      newest.size(), static_cast<long long>(checked["ok"]), static_cast<long long>(checked["warning"]),
      static_cast<long long>(checked["anomaly"]), static_cast<long long>(checked["unknown"]),
      static_cast<long long>(whole), static_cast<long long>(replayed));
}

}  // namespace

TEST(AggregateRole, StatusWindowsSurviveAKillWhileEventsWaitForTheirScores) {
  Service kafka(FLEETTWIN_SOURCE_DIR, "kafka");
  const TempDir dir("aggregate-status-roles");
  const auto registry = start_registry(kBin, dir);
  {
    std::ofstream defs(dir.file("aggregates.yaml"));
    defs << "aggregates:\n  - name: status_1m\n    group: attribute\n    attribute: status\n    window: 1m\n"
            "    grace: 5s\n  - name: fleet_1m\n    group: fleet\n    window: 1m\n    grace: 5s\n";
  }
  // Read by every role from the environment (docs/configuration.md). The held bounds well above the run, so
  // no event goes `unknown` for want of room (the one choice of the matcher that depends on timing).
  ::setenv("FLEETTWIN_AGGREGATE_DEFINITIONS", dir.file("aggregates.yaml").c_str(), 1);
  ::setenv("FLEETTWIN_AGGREGATE_FLUSH_INTERVAL", "1s", 1);
  ::setenv("FLEETTWIN_AGGREGATE_STATUS_HELD_PER_CAR", "100000", 1);
  ::setenv("FLEETTWIN_AGGREGATE_STATUS_HELD_MAX", "1000000", 1);
  // The score role trains its first model on 2 minutes of the first fleet (few epochs: seconds of wall time).
  ::setenv("FLEETTWIN_ML_WARMUP_IN_ROLE", "true", 1);
  ::setenv("FLEETTWIN_ML_WARMUP", "2m", 1);
  ::setenv("FLEETTWIN_ML_EPOCHS", "4", 1);
  // The first fleet healthy (the model learns from it), the second with many failures, so that scores above
  // their threshold and alerts come within its minutes.
  ::setenv("FLEETTWIN_SIM_FAILURE_RAMP", "30s", 1);
  auto role = [&](const std::string& name, const std::string& log,
                  const std::vector<std::string>& extra = {}) {
    return spawn(kBin, role_args(name, kafka.address(), registry.url, extra), dir.file(log));
  };
  auto sim = [&](const std::string& prefix, const std::string& data, const char* failure_rate) {
    ::setenv("FLEETTWIN_SIM_ID_PREFIX", prefix.c_str(), 1);
    const pid_t pid = role("sim", data + ".log",
                           {"--cars", "100", "--interval", "1s", "--duration", "6m", "--fast", "--seed", "5",
                            "--failure-rate", failure_rate, "--data-dir", dir.file(data)});
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  };
  log::KafkaLog klog({{"bootstrap.servers", kafka.address()}});
  auto written = [&] {
    int64_t n = 0;
    for (const auto e : klog.end_offsets(t::kAggregates)) n += e;
    return n;
  };
  auto lag = [&](const char* group, const std::string& topic) { return log::group_lag(klog, group, topic); };
  const auto has_partitions = [&](const std::string& log) {
    return eventually(
        [&] { return read_file(dir.file(log)).find("restored for partitions") != std::string::npos; }, 120s);
  };

  const pid_t process = role("process", "process.log");
  pid_t score = role("score", "score.log");
  pid_t aggregate_a = role("aggregate", "aggregate-a.log");
  const pid_t aggregate_b = role("aggregate", "aggregate-b.log");
  ASSERT_TRUE(has_partitions("aggregate-a.log")) << read_file(dir.file("aggregate-a.log"));
  ASSERT_TRUE(has_partitions("aggregate-b.log")) << read_file(dir.file("aggregate-b.log"));

  // The first fleet: scored (after the warm-up's model) and counted; nothing is held once it is all scored.
  ASSERT_TRUE(sim("first-", "sim1", "0")) << read_file(dir.file("sim1.log"));
  ASSERT_TRUE(eventually(
      [&] {
        return lag("fleettwin.process", t::kTelemetryRaw) == 0 &&
               lag("fleettwin.score", t::kTelemetry) == 0 && lag("fleettwin.aggregate", t::kTelemetry) == 0 &&
               lag("fleettwin.aggregate", t::kScores) == 0;
      },
      240s))
      << read_file(dir.file("score.log")) << read_file(dir.file("aggregate-a.log"));
  EXPECT_EQ(stop(score), 0) << read_file(dir.file("score.log"));

  // The second fleet, with no score role: the copies read its events and hold them, uncommitted.
  ASSERT_TRUE(sim("second-", "sim2", "6")) << read_file(dir.file("sim2.log"));
  ASSERT_TRUE(eventually([&] { return lag("fleettwin.process", t::kTelemetryRaw) == 0; }, 120s));
  ASSERT_TRUE(eventually([&] { return lag("fleettwin.aggregate", t::kTelemetry) > 0; }, 60s))
      << "the held events' offsets were committed";
  std::this_thread::sleep_for(2s);  // both copies read the second fleet (what they do not read, waits too)
  EXPECT_GT(lag("fleettwin.aggregate", t::kTelemetry), 0);
  EXPECT_EQ(stop(aggregate_a, SIGKILL), -SIGKILL);
  const int64_t at_kill = written();
  aggregate_a = role("aggregate", "aggregate-a2.log");
  // Running before anything stops it (a role stopped while it starts has no handler for the signal yet).
  ASSERT_TRUE(has_partitions("aggregate-a2.log")) << read_file(dir.file("aggregate-a2.log"));
  score = role("score", "score2.log");  // loads the model from fleet.models and scores the second fleet

  ASSERT_TRUE(eventually(
      [&] {
        return lag("fleettwin.score", t::kTelemetry) == 0 && lag("fleettwin.aggregate", t::kTelemetry) == 0 &&
               lag("fleettwin.aggregate", t::kScores) == 0 &&
               lag("fleettwin.aggregate", t::kAggregatesPartials) == 0;
      },
      240s))
      << read_file(dir.file("score2.log")) << read_file(dir.file("aggregate-a2.log"));
  // The last merges and revisions: fleet.aggregates stops growing.
  for (int64_t before = -1; before != written();) {
    before = written();
    std::this_thread::sleep_for(3s);
  }
  expect_clean_stops(dir, {{score, "score2.log"},
                           {aggregate_a, "aggregate-a2.log"},
                           {aggregate_b, "aggregate-b.log"},
                           {process, "process.log"},
                           {registry.pid, "registry.log"}});
  EXPECT_LT(at_kill, written()) << "the second fleet's windows were counted before the kill";

  Topics history = read_topics(klog, {t::kTelemetry, t::kScores, t::kAggregates});
  EXPECT_EQ(static_cast<int64_t>(history[t::kAggregates].size()), written());
  EXPECT_EQ(history[t::kTelemetry].size(), 2U * 100 * 360);  // two fleets of 100 cars, 6 minutes at 1 s
  check_windows(history);
}
