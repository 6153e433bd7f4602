#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "log/memory/memory_log.h"
#include "support/log_records.h"

using namespace fleettwin::log;
using namespace std::chrono_literals;
using fleettwin::testing::rec;
using fleettwin::testing::send_numbered;
using fleettwin::testing::subscribed;

namespace {

std::vector<Record> drain(Consumer& c, std::size_t expect, std::chrono::milliseconds budget = 2000ms) {
  return fleettwin::testing::drain(c, expect, budget);
}

/// Sends the values from..to-1 to topic "t", each flushed on its own, from a thread of its own; `sent`
/// says how many of them are in the log.
std::thread numbered_producer(MemoryLog& log, int from, int to, std::atomic<int>& sent) {
  return std::thread([&log, from, to, &sent] {
    auto p = log.producer();
    for (int i = from; i < to; ++i) {
      p->send(rec("t", "k", std::to_string(i)));
      p->flush(1s);
      sent = i + 1;
    }
  });
}

/// Where a producer blocked at `expect` records stays: waits for it to get there, then a moment longer.
int settled(const std::atomic<int>& sent, int expect) {
  for (int i = 0; i < 500 && sent.load() < expect; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(100ms);
  return sent.load();
}

/// Reads `n` records, committing each batch as a stage does.
std::vector<Record> read_committing(Consumer& c, std::size_t n) {
  std::vector<Record> got;
  while (got.size() < n) {
    auto batch = c.poll(100, 100ms);
    if (batch.empty()) continue;
    c.commit(next_offsets(batch));
    got.insert(got.end(), batch.begin(), batch.end());
  }
  return got;
}

/// Sends the values from..to-1 to topic "t" (capacity 10) from a thread of its own while `reader`'s group
/// holds the oldest records: the producer must stop at the capacity until `reader` reads and commits. Then
/// `reader` must have read every value 0..to-1 in order, nothing dropped.
void expect_held_at_capacity_until_read(MemoryLog& log, Consumer& reader, int from, int to) {
  std::atomic<int> sent{from};
  std::thread producer = numbered_producer(log, from, to, sent);
  EXPECT_EQ(settled(sent, 10), 10);
  const auto got = read_committing(reader, to);
  producer.join();
  EXPECT_EQ(sent.load(), to);
  for (int i = 0; i < to; ++i) EXPECT_EQ(got[i].value, std::to_string(i));  // nothing dropped
}

}  // namespace

TEST(MemoryLog, SameKeySamePartitionInOrderWithOffsets) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 4});
  auto p = log.producer();
  for (int i = 0; i < 100; ++i) p->send(rec("t", "car-" + std::to_string(i % 7), std::to_string(i)));
  ASSERT_EQ(p->flush(1s), 0);
  auto c = subscribed(log, "g", {"t"});
  auto all = drain(*c, 100);
  ASSERT_EQ(all.size(), 100u);
  std::map<std::string, std::vector<int>> per_key;
  std::map<std::string, int32_t> partition_of;
  std::map<int32_t, int64_t> last_offset;
  for (const auto& r : all) {
    per_key[r.key].push_back(std::stoi(r.value));
    if (partition_of.count(r.key)) {
      EXPECT_EQ(partition_of[r.key], r.partition);
    }
    partition_of[r.key] = r.partition;
    EXPECT_EQ(r.partition, partition_for_key(r.key, 4));
    if (last_offset.count(r.partition)) {
      EXPECT_EQ(r.offset, last_offset[r.partition] + 1);
    }
    last_offset[r.partition] = r.offset;
    EXPECT_GT(r.timestamp_ms, 0);
  }
  for (const auto& [k, v] : per_key) EXPECT_TRUE(std::is_sorted(v.begin(), v.end())) << k;
}

TEST(MemoryLog, DeliveryCallbackGetsOffsets) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 1});
  auto p = log.producer();
  std::vector<int64_t> offsets;
  for (int i = 0; i < 3; ++i)
    p->send(rec("t", "k", "v"), [&](const OutRecord& r, int64_t off, const std::string* err) {
      EXPECT_EQ(err, nullptr);
      EXPECT_EQ(r.key, "k");
      offsets.push_back(off);
    });
  EXPECT_EQ(p->flush(1s), 0);
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 1, 2}));
}

TEST(MemoryLog, CommittedGroupResumesAfterCommitNotAfterRead) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 1});
  auto p = log.producer();
  ASSERT_EQ(send_numbered(*p, "t", 10, 1s), 0);
  {
    auto c = subscribed(log, "g", {"t"});
    auto batch = drain(*c, 10);
    ASSERT_EQ(batch.size(), 10u);
    // commit only the first four: a crash now must replay from offset 4
    std::vector<Record> first(batch.begin(), batch.begin() + 4);
    c->commit(next_offsets(first));
  }
  auto c2 = subscribed(log, "g", {"t"});
  auto again = drain(*c2, 6);
  ASSERT_EQ(again.size(), 6u);
  EXPECT_EQ(again.front().offset, 4);
  EXPECT_EQ(again.front().value, "4");
  EXPECT_EQ(log.committed("g", {"t", 0}), 4);
}

TEST(MemoryLog, GroupsAreIndependentAndSeekReplays) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 1});
  auto p = log.producer();
  ASSERT_EQ(send_numbered(*p, "t", 5, 1s), 0);
  auto a = log.consumer("a");
  auto b = log.consumer("b");
  a->subscribe({"t"});
  b->subscribe({"t"});
  EXPECT_EQ(drain(*a, 5).size(), 5u);
  EXPECT_EQ(drain(*b, 5).size(), 5u);
  a->seek({"t", 0}, 2);
  auto replay = drain(*a, 3);
  ASSERT_EQ(replay.size(), 3u);
  EXPECT_EQ(replay.front().value, "2");
  EXPECT_EQ(a->lag(), 0);
}

TEST(MemoryLog, TwoMembersSplitPartitionsAndLeavingHandsThemBack) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 4});
  auto c1 = log.consumer("g");
  std::vector<TopicPartition> revoked;
  c1->subscribe({"t"}, RebalanceListener{nullptr, [&](const auto& tps) { revoked = tps; }});
  c1->poll(1, 1ms);
  EXPECT_EQ(c1->assignment().size(), 4u);
  auto c2 = subscribed(log, "g", {"t"});
  c1->poll(1, 1ms);
  c2->poll(1, 1ms);
  EXPECT_EQ(c1->assignment().size(), 2u);
  EXPECT_EQ(c2->assignment().size(), 2u);
  EXPECT_EQ(revoked.size(), 2u);
  std::set<TopicPartition> all;
  for (auto& tp : c1->assignment()) all.insert(tp);
  for (auto& tp : c2->assignment()) all.insert(tp);
  EXPECT_EQ(all.size(), 4u);
  c2->close();
  c1->poll(1, 1ms);
  EXPECT_EQ(c1->assignment().size(), 4u);
}

// A stage reading several topics keyed by car gets every topic's partition of a number (co-partitioned), and
// a partition moves only once its owner has released it: never two owners at once.
TEST(MemoryLog, MembersGetCoPartitionedTopicsHandedOverAfterRelease) {
  MemoryLog log;
  log.create_topic("a", TopicConfig{.partitions = 4});
  log.create_topic("b", TopicConfig{.partitions = 4});
  auto c1 = subscribed(log, "g", {"a", "b"});
  c1->poll(1, 1ms);
  auto c2 = subscribed(log, "g", {"a", "b"});
  c2->poll(1, 1ms);  // c1 has not released anything yet
  EXPECT_TRUE(c2->assignment().empty());
  c1->poll(1, 1ms);
  c2->poll(1, 1ms);
  for (auto* c : {c1.get(), c2.get()}) {
    std::set<int32_t> a, b;
    for (const auto& tp : c->assignment()) (tp.topic == "a" ? a : b).insert(tp.partition);
    EXPECT_EQ(a.size(), 2u);
    EXPECT_EQ(a, b);
  }
}

TEST(MemoryLog, CommittedOffsetsAndGroupLagOfAnotherGroup) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 2});
  auto p = log.producer();
  for (int i = 0; i < 10; ++i) p->send({"t", "k", "v", {}, i % 2});
  p->flush(1s);
  auto c = subscribed(log, "g", {"t"});
  c->commit({{{"t", 0}, 1}});
  EXPECT_EQ(log.committed_offsets("g", "t"), (std::vector<int64_t>{1, -1}));
  EXPECT_EQ(group_lag(log, "g", "t"), 9);
  EXPECT_EQ(group_lag(log, "nobody", "t"), 10);
}

TEST(MemoryLog, FullTopicBlocksProducerUntilConsumerCommits) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 1, .capacity = 10});
  auto c = subscribed(log, "g", {"t"});
  // Without commits the producer cannot pass the capacity: it reaches 10 and stays there.
  expect_held_at_capacity_until_read(log, *c, 0, 30);
  EXPECT_EQ(log.evicted(), 0);
}

// A group allowed to lag (the score stage's, in embedded mode) never holds producers back: once only such
// groups still need the oldest records of a full partition, they are evicted, and the lagging consumer skips
// ahead and counts them. A group that must not lose records (twin, sink) still blocks producers and reads
// everything.
TEST(MemoryLog, FullPartitionEvictsPastAGroupAllowedToLagButNotPastOneThatMustNotLose) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 1, .capacity = 10});
  log.allow_lag("derived", "t");
  log.allow_lag("idle", "t");
  auto keeper = subscribed(log, "keeper", {"t"});
  auto laggard = subscribed(log, "derived", {"t"});
  auto idle = subscribed(log, "idle", {"t"});  // allowed to lag, reads nothing until the end
  ASSERT_EQ(send_numbered(*log.producer(), "t", 3, 1s), 0);
  auto first = drain(*laggard, 3);  // reads 0..2, then stops reading and never commits
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first.front().value, "0");

  // The keeper has committed nothing yet: the producer waits for it at the capacity, laggard or not. The
  // keeper reads and commits everything, losing nothing; the laggard still reads nothing: the producer is
  // not held.
  expect_held_at_capacity_until_read(log, *keeper, 3, 40);
  EXPECT_EQ(log.evicted_past_laggards(), 30);  // 40 records, 10 kept: memory stays bounded

  // The laggard resumes at the oldest record left and counts what it never saw.
  auto rest = drain(*laggard, 10);
  ASSERT_EQ(rest.size(), 10u);
  EXPECT_EQ(rest.front().value, "30");
  EXPECT_EQ(rest.back().value, "39");
  EXPECT_EQ(laggard->skipped(), 27);  // 3..29: read 3, skipped 27, read 10
  // A group that never read nor committed knows what it missed too: it started at offset 0 when it joined.
  EXPECT_EQ(drain(*idle, 10).front().value, "30");
  EXPECT_EQ(idle->skipped(), 30);
  EXPECT_EQ(keeper->skipped(), 0);
  EXPECT_EQ(log.evicted(), 0);
}

TEST(MemoryLog, UnreadTopicKeepsNewestRecordsAndCountsEvictions) {
  MemoryLog log;
  log.create_topic("dlq", TopicConfig{.partitions = 1, .capacity = 5});
  auto p = log.producer();
  for (int i = 0; i < 12; ++i) p->send(rec("dlq", "k", std::to_string(i)));
  EXPECT_EQ(p->flush(1s), 0);
  EXPECT_EQ(log.evicted(), 7);
  EXPECT_EQ(log.end_offsets("dlq"), std::vector<int64_t>{12});
  auto c = subscribed(log, "late", {"dlq"});
  auto got = drain(*c, 5);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.front().offset, 7);
}

TEST(MemoryLog, CloseWakesBlockedProducer) {
  MemoryLog log;
  log.create_topic("t", TopicConfig{.partitions = 1, .capacity = 1});
  auto c = subscribed(log, "g", {"t"});
  std::atomic<bool> threw{false};
  std::thread t([&] {
    auto p = log.producer();
    p->send(rec("t", "k", "a"));
    p->flush(1s);
    p->send(rec("t", "k", "b"));
    if (p->flush(1s) != 0) threw = true;
  });
  std::this_thread::sleep_for(100ms);
  log.close();
  t.join();
  EXPECT_TRUE(threw.load());
}

TEST(MemoryLog, HeadersAndRecordHeaderLookup) {
  MemoryLog log;
  auto p = log.producer();
  auto r = rec("h", "k", "v");
  r.headers = {{"error.reason", "malformed"}, {"error.stage", "process"}};
  p->send(std::move(r));
  p->flush(1s);
  auto c = subscribed(log, "g", {"h"});
  auto got = drain(*c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].header("error.reason"), "malformed");
  EXPECT_FALSE(got[0].header("nope").has_value());
}
