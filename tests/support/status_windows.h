#pragma once

// What the integration tests of windows grouped by health status (`attribute: status`) share: the stored
// history read back from Kafka, the windows it implies (each event under the status its own score gave it),
// and the check of fleet.aggregates against them. Header-only; test main thread.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "codec/avro.h"
#include "codec/schemas.h"
#include "core/topics.h"
#include "core/twin.h"
#include "log/kafka/kafka_log.h"

namespace fleettwin::testing {

/// Events per (group, 1-minute window start).
using WindowCounts = std::map<std::pair<std::string, int64_t>, int64_t>;
/// Records per topic, in the order read.
using TopicRecords = std::map<std::string, std::vector<log::Record>>;

/// Every record of `topics`, from their beginning, in the test's own consumer group `group`.
inline TopicRecords read_topics(log::KafkaLog& klog, const std::vector<std::string>& topics,
                                const std::string& group) {
  auto consumer = klog.consumer(group);
  consumer->subscribe(topics);
  TopicRecords out;
  for (int empty = 0; empty < 10;) {
    auto batch = consumer->poll(10000, std::chrono::milliseconds(500));
    empty = batch.empty() ? empty + 1 : 0;
    for (auto& r : batch) out[r.topic].push_back(std::move(r));
  }
  consumer->close();
  return out;
}

/// Adds to `into` what 1-minute windows must hold of `telemetry` (records of fleet.telemetry or a site's
/// copy; car, ts and seq are CarTelemetry's first fields): each event under the status of its car's score for
/// that seq in `scores` (the active model's; core::score_status), else `unknown`; under "fleet"; and under
/// `site` when it is not empty. No (car, seq) may come twice.
inline void add_expected_windows(const std::vector<log::Record>& telemetry,
                                 const std::vector<log::Record>& scores, const std::string& site,
                                 WindowCounts& into) {
  constexpr int64_t kMinute = 60'000;
  std::map<std::pair<std::string, int64_t>, core::HealthStatus> status;  // (car, seq)
  for (const auto& r : scores) {
    codec::AnomalyScore s;
    std::string error;
    EXPECT_TRUE(codec::decode_avro_anomaly_score(r.value, s, nullptr, &error)) << error;
    if (!r.header("model.role"))
      status[{s.car, s.seq}] = core::score_status(s.score, s.threshold, s.in_alert);
  }
  std::set<std::pair<std::string, int64_t>> seen;
  for (const auto& r : telemetry) {
    int32_t id = 0;
    std::string_view body;
    EXPECT_TRUE(codec::read_confluent_header(r.value, id, body));
    codec::AvroReader reader(body);
    std::string_view car;
    int64_t ts = 0, seq = 0;
    EXPECT_TRUE(reader.read_string(car) && reader.read_long(ts) && reader.read_long(seq));
    EXPECT_TRUE(seen.emplace(std::string(car), seq).second) << "an event twice on " << r.topic;
    const int64_t start = ts - ts % kMinute;
    const auto it = status.find({std::string(car), seq});
    ++into[{std::string(core::to_string(it == status.end() ? core::HealthStatus::kUnknown : it->second)),
            start}];
    ++into[{"fleet", start}];
    if (!site.empty()) ++into[{site, start}];
  }
}

/// The results of fleet.aggregates (`aggregates`) against `expected`: every window written holds exactly the
/// events expected of it (its newest revision), a replayed result is the same bytes, a merge's revision is
/// its count, and in each window whose every status has a result the statuses add up to the fleet's. Returns
/// the windows checked per group, plus "whole": the windows whose statuses were added up.
inline std::map<std::string, int64_t> check_status_windows(const WindowCounts& expected,
                                                           const std::vector<log::Record>& aggregates) {
  std::map<std::string, std::string> by_revision;  // key|revision -> the record's value
  std::map<std::pair<std::string, int64_t>, codec::AggregateResult> newest;  // (group, start)
  int64_t replayed = 0;
  for (const auto& r : aggregates) {
    codec::AggregateResult a;
    std::string error;
    EXPECT_TRUE(codec::decode_avro_aggregate_result(r.value, a, nullptr, &error)) << error;
    const auto [it, fresh] = by_revision.try_emplace(r.key + "|" + std::to_string(a.revision), r.value);
    if (!fresh) {
      ++replayed;
      EXPECT_EQ(it->second, r.value) << "a replay wrote another result for " << r.key;
    }
    EXPECT_EQ(a.revision, a.count) << r.key;  // a merge's revision is the count of events merged
    const auto [n, first] = newest.try_emplace({a.group, a.window_start}, a);
    if (!first && a.revision > n->second.revision) n->second = a;
  }
  std::map<std::string, int64_t> checked;  // per group
  for (const auto& [key, r] : newest) {
    const auto want = expected.find(key);
    EXPECT_NE(want, expected.end()) << "a window of no event: " << key.first << " " << key.second;
    if (want == expected.end()) continue;
    EXPECT_EQ(r.count, want->second) << key.first << " window " << key.second;
    ++checked[key.first];
  }
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
    ++checked["whole"];
  }
  std::string summary;
  for (const auto& [group, n] : checked) summary += " " + group + " " + std::to_string(n);
  std::printf("status windows: %zu checked (per group:%s), %lld results replayed identically\n",
              newest.size(), summary.c_str(), static_cast<long long>(replayed));
  return checked;
}

/// `expected` as one line ("group@start=count ..."), for a failure's message.
inline std::string describe(const WindowCounts& expected) {
  std::string out;
  for (const auto& [key, count] : expected)
    out += key.first + "@" + std::to_string(key.second) + "=" + std::to_string(count) + " ";
  return out;
}

}  // namespace fleettwin::testing
