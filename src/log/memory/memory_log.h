#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "log/log.h"

namespace fleettwin::log {

/// The embedded log: Kafka's semantics (partitions by key hash, offsets, consumer groups with explicit
/// commits, replay from an offset) in memory, for `fleettwin up` without a broker. Bounded: a full partition
/// makes producers wait until every consumer group that must not lose records has committed past its oldest
/// records, so memory stays bounded and nothing they read is dropped. A group allowed to lag on a topic
/// (allow_lag: the score stage's) never holds producers back: a full partition evicts the oldest records once
/// only such groups still need them, and their consumers skip ahead and count what they skipped. A topic no
/// group reads keeps its newest `capacity` records (retention).
/// Thread-safe; producers and consumers it hands out are each used by one thread.
class MemoryLog final : public Log {
 public:
  explicit MemoryLog(TopicConfig defaults = {});
  ~MemoryLog() override;

  void create_topic(const std::string& name, const TopicConfig& config) override;
  std::unique_ptr<Producer> producer() override;
  std::unique_ptr<Consumer> consumer(const std::string& group) override;
  std::vector<int64_t> end_offsets(const std::string& topic) override;
  std::vector<int64_t> committed_offsets(const std::string& group, const std::string& topic) override;
  bool durable() const override { return false; }
  void allow_lag(const std::string& group, const std::string& topic) override;

  /// Wakes every blocked producer and consumer; afterwards sends fail with LogError. Used at shutdown.
  void close();
  /// Records dropped by retention on topics that no group reads.
  int64_t evicted() const { return _evicted.load(); }
  /// Records evicted from full partitions before every group allowed to lag had committed them.
  int64_t evicted_past_laggards() const { return _evicted_past_laggards.load(); }
  /// Committed offset of `group` on a partition (-1: none).
  int64_t committed(const std::string& group, const TopicPartition& tp);

  // Internal types, public so the .cc's producer and consumer classes can name them.
  struct Stored {
    std::string key, value;
    std::vector<Header> headers;
    int64_t timestamp_ms = 0;
  };
  struct Partition {
    std::deque<Stored> records;
    int64_t base = 0;  ///< offset of records.front()
    int64_t end() const { return base + static_cast<int64_t>(records.size()); }
  };
  /// Wakes one consumer when a subscribed topic gets data.
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool ready = false;
    void notify();
  };
  struct Topic {
    std::string name;
    TopicConfig config;
    std::mutex mu;
    std::condition_variable space_cv;
    std::vector<Partition> partitions;
    std::map<std::string, std::vector<int64_t>> committed;  ///< group -> per partition, -1 = none
    std::set<std::string> may_lag;                          ///< groups that never hold producers back
    std::vector<Waiter*> waiters;
  };
  struct Member;
  struct Group {
    std::mutex mu;
    uint64_t generation = 0;
    std::vector<Member*> members;                    ///< join order
    std::map<TopicPartition, const Member*> owners;  ///< who holds each partition now
  };

  Topic& topic(const std::string& name);  ///< creates with the defaults when missing
  Group& group(const std::string& name);
  void append(Topic& t, std::vector<OutRecord>& records, std::vector<int64_t>& offsets);
  /// Makes room in a full partition, waiting while a group that must not lose records needs the oldest.
  /// Caller holds t.mu (as `lock`).
  void make_room(Topic& t, std::size_t p, std::unique_lock<std::mutex>& lock);
  bool closed() const { return _closed.load(); }

 private:
  TopicConfig _defaults;
  std::mutex _mu;  // guards the two maps (not the topics' contents)
  std::map<std::string, std::unique_ptr<Topic>> _topics;
  std::map<std::string, std::unique_ptr<Group>> _groups;
  std::atomic<bool> _closed{false};
  std::atomic<int64_t> _evicted{0};
  std::atomic<int64_t> _evicted_past_laggards{0};
};

}  // namespace fleettwin::log
