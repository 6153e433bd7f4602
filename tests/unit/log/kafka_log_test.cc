// The Kafka adapter against librdkafka's in-process mock cluster: real protocol, real client, faults injected
// with rdkafka_mock.h (broker down, request errors). Every wait is bounded by a deadline; the deadlines are
// generous because the mock delays a group's first join by 3 s and a rebalance by up to session.timeout.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "log/kafka/kafka_log.h"
#include "log/transient_error.h"
#include "support/log_capture.h"
#include "support/log_records.h"
#include "support/mock_cluster.h"

using namespace fleettwin::log;
using namespace std::chrono_literals;
using fleettwin::testing::drain;
using fleettwin::testing::rec;
using fleettwin::testing::send_numbered;
using fleettwin::testing::subscribed;
using fleettwin::testing::until;

namespace fleettwin::log {
void PrintTo(const TopicPartition& tp, std::ostream* os) { *os << tp.topic << "[" << tp.partition << "]"; }
}  // namespace fleettwin::log

namespace {

using fleettwin::testing::kInitProducerId;
using fleettwin::testing::kOffsetCommit;
using fleettwin::testing::kProduce;
using fleettwin::testing::LogCapture;
using fleettwin::testing::MockCluster;

using Clock = std::chrono::steady_clock;

int64_t sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

class KafkaLogTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> settings(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> s{
        {"bootstrap.servers", cluster.bootstrap()},
        // The mock waits up to session.timeout - 1 s for members to rejoin: keep rebalances short.
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "500"},
    };
    for (auto& [k, v] : extra) s[k] = v;
    return s;
  }

  /// Ten records "0".."9" on topic "t" (one partition, created by the caller), all read by group "g" into
  /// `batch` with the consumer `c`, which commits only the first four: a restart must replay from offset 4.
  void read_ten_commit_four(KafkaLog& log, std::unique_ptr<Consumer>& c, std::vector<Record>& batch) {
    ASSERT_EQ(send_numbered(*log.producer(), "t", 10, 30s), 0);
    c = subscribed(log, "g", {"t"});
    batch = drain(*c, 10);
    ASSERT_EQ(batch.size(), 10u);
    c->commit(next_offsets({batch.begin(), batch.begin() + 4}));
  }

  MockCluster cluster{3};
};

TEST_F(KafkaLogTest, RoundTripKeepsKeysHeadersTimestampsOrderAndDeliveryOffsets) {
  cluster.topic("t", 4);
  KafkaLog log(settings());
  auto p = log.producer();
  std::map<std::string, std::pair<int32_t, int64_t>> delivered;  // value -> (partition, offset)
  for (int i = 0; i < 200; ++i) {
    auto r = rec("t", "car-" + std::to_string(i % 10), std::to_string(i));
    r.headers = {{"mqtt.topic", "fleet/car-" + std::to_string(i % 10) + "/telemetry"}, {"empty", ""}};
    r.timestamp_ms = 1'700'000'000'000 + i;
    p->send(std::move(r), [&](const OutRecord& out, int64_t offset, const std::string* error) {
      ASSERT_EQ(error, nullptr) << *error;
      EXPECT_EQ(out.topic, "t");
      EXPECT_EQ(out.key, "car-" + std::to_string(std::stoi(out.value) % 10));
      delivered[out.value] = {out.partition, offset};
    });
  }
  ASSERT_EQ(p->flush(30s), 0);
  ASSERT_EQ(delivered.size(), 200u);

  auto c = subscribed(log, "g", {"t"});
  auto all = drain(*c, 200);
  ASSERT_EQ(all.size(), 200u);
  std::map<std::string, int32_t> partition_of;
  std::map<std::string, int> last_of_key;
  std::map<int32_t, int64_t> per_partition;
  for (const auto& r : all) {
    EXPECT_EQ(r.topic, "t");
    const int i = std::stoi(r.value);
    EXPECT_EQ(r.key, "car-" + std::to_string(i % 10));
    EXPECT_EQ(delivered[r.value], std::make_pair(r.partition, r.offset)) << r.value;
    if (partition_of.count(r.key)) {
      EXPECT_EQ(partition_of[r.key], r.partition) << r.key;
    }
    partition_of[r.key] = r.partition;
    if (last_of_key.count(r.key)) {
      EXPECT_LT(last_of_key[r.key], i) << "order of " << r.key;
    }
    last_of_key[r.key] = i;
    EXPECT_EQ(r.header("mqtt.topic"), "fleet/" + r.key + "/telemetry");
    EXPECT_EQ(r.header("empty"), "");
    EXPECT_EQ(r.timestamp_ms, 1'700'000'000'000 + i);
    ++per_partition[r.partition];
  }
  auto ends = log.end_offsets("t");
  ASSERT_EQ(ends.size(), 4u);
  for (int32_t q = 0; q < 4; ++q) EXPECT_EQ(ends[q], per_partition[q]);
  EXPECT_EQ(c->lag(), 0);
  c->close();
  EXPECT_THROW(c->poll(1, 1ms), LogError);
  EXPECT_THROW(c->commit({{{"t", 0}, 1}}), LogError);
}

TEST_F(KafkaLogTest, CommitAndReopenResumesAfterTheCommitNotAfterTheRead) {
  cluster.topic("t", 1);
  KafkaLog log(settings());
  {
    std::unique_ptr<Consumer> c;
    std::vector<Record> batch;
    ASSERT_NO_FATAL_FAILURE(read_ten_commit_four(log, c, batch));
    EXPECT_EQ(c->lag(), 0);
    c->seek({"t", 0}, 7);
    auto replay = drain(*c, 3);
    ASSERT_EQ(replay.size(), 3u);
    EXPECT_EQ(replay.front().offset, 7);
    EXPECT_THROW(c->seek({"t", 5}, 0), LogError);  // not assigned
  }
  EXPECT_EQ(log.committed("g", {"t", 0}), 4);
  auto c2 = subscribed(log, "g", {"t"});
  auto again = drain(*c2, 6);
  ASSERT_EQ(again.size(), 6u);
  EXPECT_EQ(again.front().offset, 4);
  EXPECT_EQ(again.front().value, "4");
  EXPECT_EQ(log.committed("other", {"t", 0}), -1);
  // What another process's stage has left (the twin stage asks it of the process stage's group).
  EXPECT_EQ(log.committed_offsets("g", "t"), std::vector<int64_t>{4});
  EXPECT_EQ(group_lag(log, "g", "t"), 6);
  EXPECT_EQ(group_lag(log, "other", "t"), 10);
}

TEST_F(KafkaLogTest, LagCountsFromTheCommitBeforeAnythingIsRead) {
  cluster.topic("t", 2);
  KafkaLog log(settings());
  auto p = log.producer();
  for (int i = 0; i < 20; ++i) p->send(rec("t", "", std::to_string(i)), nullptr);
  ASSERT_EQ(p->flush(30s), 0);
  auto c = subscribed(log, "g", {"t"});
  // One record read: its partition's position is known, the other's comes from the group (no commit yet:
  // the earliest offset).
  std::vector<Record> first;
  ASSERT_TRUE(until([&] { return !first.empty(); }, [&] { first = c->poll(1, 100ms); }));
  ASSERT_EQ(c->assignment().size(), 2u);
  EXPECT_EQ(c->lag(), 19);
  EXPECT_EQ(drain(*c, 19).size(), 19u);
  EXPECT_EQ(c->lag(), 0);
}

// What a group promises when a member joins (DESIGN.md §5: at-least-once delivery, exactly-once effect
// through the stores' guards): nothing is lost, and a partition that moves is read by its new owner from the
// group's commit. The old owner commits what it processed at the revoke, while it still owns the partition,
// so normally nothing is read twice. A commit the coordinator refuses there (librdkafka 2.0's mock cluster
// answers a follower's SyncGroup that arrives after the leader's with INVALID_REQUEST; the follower rejoins
// at once, and the mock refuses commits while the group joins, where a real broker takes them until the
// JoinGroup responses of the next generation) leaves the partition at its previous commit: the records
// processed since are read again by the new owner, from exactly that commit, and by nobody else; without a
// refused commit nothing is read twice.
TEST_F(KafkaLogTest, TwoMembersSplitPartitionsTheNewOwnerReadsFromTheCommitAndClosingHandsThemBack) {
  cluster.topic("t", 4);
  const LogCapture said;  // before the log's handles, after them when destroyed
  KafkaLog log(settings());
  auto p = log.producer();
  auto produce = [&](int from, int to) {
    for (int i = from; i < to; ++i) p->send(rec("t", "car-" + std::to_string(i % 50), std::to_string(i)));
    ASSERT_EQ(p->flush(30s), 0);
  };
  produce(0, 2000);

  /// One processing of a record: by which member, from where.
  struct Processed {
    int member;
    TopicPartition tp;
    int64_t offset;
  };
  std::map<std::string, std::vector<Processed>> seen;  // value -> its processings, in order
  std::vector<TopicPartition> revoked1;
  std::set<TopicPartition> assigned2;
  // The stage loop in miniature: poll, "process", commit, and only then poll again.
  auto step = [&](Consumer& c, int member, std::size_t max) {
    auto batch = c.poll(max, 20ms);
    for (const auto& r : batch) seen[r.value].push_back({member, {r.topic, r.partition}, r.offset});
    if (!batch.empty()) c.commit(next_offsets(batch));
  };
  auto c1 = log.consumer("g");
  c1->subscribe({"t"}, RebalanceListener{nullptr, [&](const auto& tps) {
                                           revoked1.insert(revoked1.end(), tps.begin(), tps.end());
                                         }});
  ASSERT_TRUE(
      until([&] { return c1->assignment().size() == 4 && seen.size() >= 50; }, [&] { step(*c1, 1, 5); }));

  auto c2 = log.consumer("g");
  c2->subscribe(
      {"t"}, RebalanceListener{[&](const auto& tps) { assigned2.insert(tps.begin(), tps.end()); }, nullptr});
  // Slow consumption (pacing only) keeps records flowing while the partitions move.
  ASSERT_TRUE(until([&] { return c1->assignment().size() == 2 && c2->assignment().size() == 2; },
                    [&] {
                      step(*c1, 1, 5);
                      step(*c2, 2, 5);
                      std::this_thread::sleep_for(10ms);
                    }));
  EXPECT_LT(seen.size(), 2000u) << "the rebalance happened after everything was read; nothing was tested";
  std::set<TopicPartition> all;
  for (const auto& tp : c1->assignment()) all.insert(tp);
  for (const auto& tp : c2->assignment()) all.insert(tp);
  EXPECT_EQ(all.size(), 4u);
  // Two of c1's partitions moved (more revokes would mean partitions were lost on the way).
  EXPECT_GE(revoked1.size(), 2u);
  const auto now2 = c2->assignment();
  EXPECT_EQ(assigned2, std::set<TopicPartition>(now2.begin(), now2.end()));

  produce(2000, 3000);
  ASSERT_TRUE(until([&] { return seen.size() == 3000; },
                    [&] {
                      step(*c1, 1, 100);
                      step(*c2, 2, 100);
                    }));
  // Nothing lost (every value seen). c2 starts each partition it was given at some offset (the group's
  // commit): what c1 read of it from there on is read again, exactly once more, and nothing else is.
  std::map<TopicPartition, int64_t> first2;  // c2's first offset of each partition it was given
  for (const auto& [value, times] : seen)
    for (const auto& t : times)
      if (t.member == 2) {
        auto [it, fresh] = first2.emplace(t.tp, t.offset);
        if (!fresh) it->second = std::min(it->second, t.offset);
      }
  int64_t twice = 0, c1_past_start = 0;
  for (const auto& [value, times] : seen) {
    ASSERT_LE(times.size(), 2u) << "record " << value;
    const auto& tp = times.front().tp;
    const bool moved = first2.count(tp) && assigned2.count(tp);
    if (times.front().member == 1 && moved && times.front().offset >= first2[tp]) ++c1_past_start;
    if (times.size() == 1) continue;
    ++twice;
    EXPECT_EQ(times[0].member, 1) << "record " << value;
    EXPECT_EQ(times[1].member, 2) << "record " << value;
    EXPECT_TRUE(moved) << "record " << value << " read twice on a partition that did not move";
  }
  EXPECT_EQ(twice, c1_past_start) << "c2 skipped a record c1 had not committed, or read one twice";
  // And only when a commit at the move was refused (the adapter says so): otherwise each record once.
  if (twice > 0) {
    EXPECT_TRUE(said.contains("went to another member while its commit waited"))
        << twice << " records read twice without a refused commit";
  }

  c2->close();
  ASSERT_TRUE(until([&] { return c1->assignment().size() == 4; }, [&] { step(*c1, 1, 100); }));
  EXPECT_EQ(seen.size(), 3000u);
}

// The stage runner's way (src/stages/stage.cc): a member that commits at an interval commits, from its
// listener's on_revoked, what it processed of the partitions being taken away. That commit goes out while
// they are still its own, so their next owner starts after them and reads nothing twice. (Before 2026-12-07
// the adapter dropped the partitions from the assignment before calling the listener, skipped the commit as
// "no longer assigned", and the new owner replayed everything since the previous commit.)
TEST_F(KafkaLogTest, ACommitFromTheRevokeListenerIsWhereTheNextOwnerStarts) {
  cluster.topic("t", 4);
  const LogCapture said;
  KafkaLog log(settings());
  auto p = log.producer();
  for (int i = 0; i < 2000; ++i) p->send(rec("t", "car-" + std::to_string(i % 50), std::to_string(i)));
  ASSERT_EQ(p->flush(30s), 0);

  std::map<std::string, int> seen;               // value -> times processed
  std::map<TopicPartition, int64_t> processed1;  // c1's next offset per partition; it never commits itself
  std::map<TopicPartition, int64_t> at_revoke;   // what c1's listener committed
  std::map<TopicPartition, int64_t> first2;      // c2's first offset per partition
  bool refused = false;
  std::unique_ptr<Consumer> c1 = log.consumer("g");
  c1->subscribe({"t"}, RebalanceListener{nullptr, [&](const auto& tps) {
                                           Offsets theirs;
                                           for (const auto& tp : tps)
                                             if (processed1.count(tp)) theirs[tp] = processed1[tp];
                                           try {
                                             if (!theirs.empty()) c1->commit(theirs);
                                             at_revoke.insert(theirs.begin(), theirs.end());
                                           } catch (const TransientLogError&) {
                                             refused = true;
                                           }
                                         }});
  auto step1 = [&] {
    for (const auto& r : c1->poll(5, 20ms)) {
      ++seen[r.value];
      processed1[{r.topic, r.partition}] = r.offset + 1;
    }
  };
  // c1 has processed some of every partition, so whichever two move, it has something to commit.
  ASSERT_TRUE(until([&] { return c1->assignment().size() == 4 && processed1.size() == 4; }, step1));

  auto c2 = log.consumer("g");
  c2->subscribe({"t"}, RebalanceListener{});
  auto step2 = [&] {
    auto batch = c2->poll(5, 20ms);
    for (const auto& r : batch) {
      ++seen[r.value];
      first2.emplace(TopicPartition{r.topic, r.partition}, r.offset);
    }
    if (!batch.empty()) c2->commit(next_offsets(batch));
  };
  ASSERT_TRUE(until([&] { return c1->assignment().size() == 2 && c2->assignment().size() == 2; },
                    [&] {
                      step1();
                      step2();
                      std::this_thread::sleep_for(10ms);
                    }));
  // More records, so c2 reads from every partition it was given even if c1 had read one to its end.
  for (int i = 2000; i < 3000; ++i) p->send(rec("t", "car-" + std::to_string(i % 50), std::to_string(i)));
  ASSERT_EQ(p->flush(30s), 0);
  ASSERT_TRUE(until([&] { return seen.size() == 3000; },
                    [&] {
                      step1();
                      step2();
                    }));
  if (refused) {
    // The mock refused the commit (see the test above): those partitions replay from the previous commit.
    EXPECT_TRUE(said.contains("during the rebalance"));
    return;
  }
  EXPECT_FALSE(at_revoke.empty()) << "c1 had processed nothing of what it gave up; nothing was tested";
  ASSERT_EQ(first2.size(), 2u);
  for (const auto& [tp, first] : first2) {
    const auto it = at_revoke.find(tp);
    EXPECT_EQ(first, it == at_revoke.end() ? 0 : it->second)
        << "c2 did not start where c1's listener committed";
  }
  for (const auto& [value, times] : seen) EXPECT_EQ(times, 1) << "record " << value;
}

TEST_F(KafkaLogTest, BrokerDownDuringProduceLosesAndDuplicatesNothing) {
  cluster.topic("t", 6);
  for (int32_t q = 0; q < 6; ++q) cluster.leader("t", q, q % 3 + 1);  // the mock picks leaders at random
  KafkaLog log(settings());
  auto p = log.producer();
  int ok = 0, failed = 0;
  auto cb = [&](const OutRecord&, int64_t, const std::string* error) { error ? ++failed : ++ok; };
  for (int i = 0; i < 500; ++i) p->send(rec("t", "car-" + std::to_string(i % 30), std::to_string(i)), cb);
  // Some of these are in flight when the connection drops: their retries must not be written twice.
  cluster.broker_down(2);  // leads partitions 1 and 4; the mock does not move leadership
  // The mock applies it on its own thread: give it a moment (pacing, not a speed assertion).
  std::this_thread::sleep_for(500ms);
  for (int i = 500; i < 1000; ++i) p->send(rec("t", "car-" + std::to_string(i % 30), std::to_string(i)), cb);
  EXPECT_GT(p->flush(2s), 0) << "records of the down broker's partitions cannot be acknowledged yet";
  std::this_thread::sleep_for(2s);  // the outage, not a speed assertion
  cluster.broker_up(2);
  ASSERT_EQ(p->flush(60s), 0);
  EXPECT_EQ(ok, 1000);
  EXPECT_EQ(failed, 0);

  EXPECT_EQ(sum(log.end_offsets("t")), 1000) << "a retry was written twice";
  auto c = subscribed(log, "g", {"t"});
  std::map<std::string, int> seen;
  for (const auto& r : drain(*c, 1000)) ++seen[r.value];
  ASSERT_EQ(seen.size(), 1000u);
  for (const auto& [value, times] : seen) EXPECT_EQ(times, 1) << value;
}

TEST_F(KafkaLogTest, RetriableProduceErrorsAreRetriedWithoutLossOrDuplicates) {
  cluster.topic("t", 1);
  KafkaLog log(settings());
  auto p = log.producer();
  cluster.push_errors(kProduce, {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                 RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS});
  std::vector<int64_t> offsets;
  for (int i = 0; i < 100; ++i)
    p->send(rec("t", "k", std::to_string(i)),
            [&](const OutRecord&, int64_t offset, const std::string* error) {
              EXPECT_EQ(error, nullptr);
              offsets.push_back(offset);
            });
  ASSERT_EQ(p->flush(60s), 0);
  ASSERT_EQ(offsets.size(), 100u);
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(offsets[i], i);
  auto c = subscribed(log, "g", {"t"});
  auto all = drain(*c, 100);
  ASSERT_EQ(all.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(all[i].value, std::to_string(i));
  EXPECT_EQ(log.end_offsets("t"), std::vector<int64_t>{100});
}

TEST_F(KafkaLogTest, PermanentProduceErrorIsReportedPerRecordNeverSilent) {
  cluster.topic("t", 1);
  KafkaLog log(settings());
  auto p = log.producer();
  // Everything up to the first request must be queued before the error: one batch fails as a whole.
  cluster.push_errors(kProduce, {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED});
  std::set<std::string> ok, failed;
  std::string error_seen;
  for (int i = 0; i < 50; ++i)
    p->send(rec("t", "k", std::to_string(i)), [&](const OutRecord& r, int64_t, const std::string* error) {
      if (error) {
        failed.insert(r.value);
        error_seen = *error;
      } else {
        ok.insert(r.value);
      }
    });
  int64_t reported = -1;
  try {
    reported = p->flush(60s);
  } catch (const LogError& e) {
    ADD_FAILURE() << "fatal instead of per-record failures: " << e.what();
  }
  EXPECT_EQ(ok.size() + failed.size(), 50u) << "every record gets exactly one report";
  EXPECT_GE(failed.size(), 1u);
  EXPECT_EQ(reported, static_cast<int64_t>(failed.size()));
  EXPECT_NE(error_seen.find("TOPIC_AUTHORIZATION_FAILED"), std::string::npos) << error_seen;
  EXPECT_EQ(p->flush(1s), 0) << "failures are reported once";
  // What was acknowledged is in the log, once; what failed is not.
  auto c = subscribed(log, "g", {"t"});
  std::set<std::string> stored;
  for (const auto& r : drain(*c, ok.size())) EXPECT_TRUE(stored.insert(r.value).second) << r.value;
  EXPECT_EQ(stored, ok);
}

TEST_F(KafkaLogTest, FatalProducerErrorThrowsWithLibrdkafkasText) {
  cluster.topic("t", 1);
  // The idempotent producer cannot get a producer id: librdkafka raises a fatal error.
  cluster.push_errors(kInitProducerId, {RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED});
  KafkaLog log(settings());
  auto p = log.producer();
  std::string error;
  // The fatal error surfaces at the first call after librdkafka raised it: the send when the producer-id
  // request already failed (seen under ASan, where the producer starts slower than the mock answers), else
  // the flush. Either way it is a LogError with librdkafka's text; a record that was queued gets its
  // callback.
  bool queued = false;
  try {
    p->send(rec("t", "k", "v"),
            [&](const OutRecord&, int64_t, const std::string* e) { error = e ? *e : "none"; });
    queued = true;
    p->flush(30s);
    FAIL() << "neither send nor flush threw";
  } catch (const LogError& e) {
    EXPECT_NE(std::string(e.what()).find("authorization"), std::string::npos) << e.what();
  }
  if (queued) {
    EXPECT_FALSE(error.empty()) << "the record's callback was not called";
    EXPECT_NE(error, "none");
  }
  EXPECT_THROW(p->send(rec("t", "k", "v"), nullptr), LogError);
}

TEST_F(KafkaLogTest, FailedCommitKeepsThePreviousCommittedOffset) {
  cluster.topic("t", 1);
  KafkaLog log(settings(), KafkaOptions{.operation_timeout = 3s});
  std::unique_ptr<Consumer> c;
  std::vector<Record> batch;
  ASSERT_NO_FATAL_FAILURE(read_ten_commit_four(log, c, batch));
  ASSERT_EQ(log.committed("g", {"t", 0}), 4);

  cluster.push_errors(kOffsetCommit, {RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE});
  EXPECT_THROW(c->commit(next_offsets(batch)), LogError);
  EXPECT_EQ(log.committed("g", {"t", 0}), 4) << "nothing may be committed early";

  // "Rebalance in progress" makes the commit wait for the rebalance; none comes, so it fails in the end.
  cluster.push_errors(kOffsetCommit, {RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS});
  EXPECT_THROW(c->commit(next_offsets(batch)), LogError);
  EXPECT_EQ(log.committed("g", {"t", 0}), 4);

  // Errors that clear by themselves are retried within operation_timeout.
  cluster.push_errors(kOffsetCommit,
                      {RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT});
  c->commit(next_offsets(batch));
  EXPECT_EQ(log.committed("g", {"t", 0}), 10);
  // The records kept while the commit waited are not lost: nothing new was produced, nothing comes back.
  EXPECT_TRUE(c->poll(10, 200ms).empty());
}

TEST_F(KafkaLogTest, FullLocalQueueBlocksSendInsteadOfDropping) {
  cluster.topic("t", 2);
  KafkaLog log(settings({{"queue.buffering.max.messages", "10"}}));
  auto p = log.producer();
  int ok = 0;
  for (int i = 0; i < 1000; ++i)
    p->send(rec("t", std::to_string(i % 7), std::to_string(i)),
            [&](const OutRecord&, int64_t, const std::string* error) { ok += error ? 0 : 1; });
  ASSERT_EQ(p->flush(30s), 0);
  EXPECT_EQ(ok, 1000);
  EXPECT_EQ(sum(log.end_offsets("t")), 1000);
}

TEST_F(KafkaLogTest, RefusedRecordIsAFailedDeliveryNotAnException) {
  cluster.topic("t", 2);
  KafkaLog log(settings());
  auto p = log.producer();
  auto r = rec("t", "k", "v");
  r.partition = 7;  // the topic has two
  std::string error;
  // librdkafka may refuse at once or after learning the partition count: both end as a failed delivery.
  p->send(std::move(r), [&](const OutRecord&, int64_t, const std::string* e) { error = e ? *e : "none"; });
  EXPECT_EQ(p->flush(30s), 1);
  EXPECT_NE(error.find("PARTITION"), std::string::npos) << error;
}

// The bridge diverts a record the log refuses for good to the DLQ instead of retrying it for ever
// (docs/architecture.md "Front door limits"): the report says which refusals are for good.
TEST_F(KafkaLogTest, ARecordOverMessageMaxBytesIsRefusedForGood) {
  cluster.topic("t", 2);
  KafkaLog log(settings({{"message.max.bytes", "2000"}}));
  auto p = log.producer();
  std::optional<DeliveryError> big, missing;
  p->send(rec("t", "k", std::string(5000, 'x')), [&](const OutRecord&, int64_t, const DeliveryError* e) {
    if (e) big = *e;
  });
  auto r = rec("t", "k", "v");
  r.partition = 7;  // a partition the topic does not have (yet): it may be created, so not for good
  p->send(std::move(r), [&](const OutRecord&, int64_t, const DeliveryError* e) {
    if (e) missing = *e;
  });
  EXPECT_EQ(p->flush(30s), 2);
  ASSERT_TRUE(big.has_value());
  EXPECT_TRUE(big->permanent) << *big;
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->permanent) << *missing;
}

TEST_F(KafkaLogTest, EndOffsetsOfAMissingTopicIsAnError) {
  KafkaLog log(settings(), KafkaOptions{.operation_timeout = 5s});
  EXPECT_THROW(log.end_offsets("missing"), LogError);
}

TEST_F(KafkaLogTest, SettingsAreValidatedAndNamed) {
  auto message = [&](std::map<std::string, std::string> extra) -> std::string {
    try {
      KafkaLog log(settings(std::move(extra)));
    } catch (const LogError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({{"no.such.property", "1"}}).find("'no.such.property'"), std::string::npos);
  EXPECT_NE(message({{"session.timeout.ms", "soon"}}).find("'session.timeout.ms'"), std::string::npos);
  EXPECT_NE(message({{"enable.auto.commit", "true"}}).find("'enable.auto.commit'"), std::string::npos);
  EXPECT_NE(message({{"acks", "1"}}).find("'acks'"), std::string::npos);
  EXPECT_NE(message({{"enable.idempotence", "false"}}).find("'enable.idempotence'"), std::string::npos);
  EXPECT_NE(message({{"group.id", "x"}}).find("'group.id'"), std::string::npos);
  // Restating a fixed value and security settings are fine.
  EXPECT_EQ(message({{"acks", "-1"}, {"enable.auto.commit", "false"}, {"security.protocol", "plaintext"}}),
            "");
  EXPECT_EQ(KafkaLog::settings_from_config({{"kafka.bootstrap.servers", "b:9092"}, {"mqtt.host", "m"}}),
            (std::map<std::string, std::string>{{"bootstrap.servers", "b:9092"}}));
}

}  // namespace
