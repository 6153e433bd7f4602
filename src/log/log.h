#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleettwin::log {

/// A record header (Kafka-style: byte string key and value).
struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

/// One record of the log, as a consumer sees it. Plain value.
struct Record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;    ///< car id (or model name)
  std::string value;  ///< payload bytes
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;  ///< producer wall time

  /// Value of the first header called `key`, or nullopt.
  std::optional<std::string_view> header(std::string_view key) const;
};

/// A record to write. Partition -1: chosen by key hash (the same hash as Kafka's default partitioner is not
/// required; only "same key, same partition" is).
struct OutRecord {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<Header> headers{};
  int32_t partition = -1;
  int64_t timestamp_ms = 0;  ///< 0: now
};

/// Identifies one partition of one topic.
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

/// Next offset to read per partition; what a consumer commits.
using Offsets = std::map<TopicPartition, int64_t>;

/// Offsets to commit after having processed `batch`: one past the last record of each partition.
Offsets next_offsets(const std::vector<Record>& batch);

/// Raised by adapters on unrecoverable errors (broker gone, fatal producer error, closed log).
class LogError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Topic settings used when a topic is created.
struct TopicConfig {
  int32_t partitions = 8;
  int32_t replication = 1;
  bool compacted = false;
  /// Embedded log only: records kept per partition. When a partition is full the producer blocks until
  /// every consumer group that must not lose records has committed past the oldest ones (backpressure,
  /// never a silent drop); groups allowed to lag (Log::allow_lag) are evicted past, and count what they
  /// skipped; topics nobody consumes (e.g. the DLQ) drop their oldest records instead (retention).
  int64_t capacity = 1 << 16;
};

/// Why the log did not take a record: its text, and whether sending the same record again can succeed.
/// Derives from std::string so delivery callbacks that only want the text take it as `const std::string*`.
struct DeliveryError : std::string {
  explicit DeliveryError(std::string text, bool is_permanent = false)
      : std::string(std::move(text)), permanent(is_permanent) {}
  /// The log refuses this record for what it is (too large, invalid), not for the log's state: resending it
  /// fails the same way, so a caller that would retry for ever (the bridge) must divert it instead.
  bool permanent = false;
};

/// Writes records. One producer per stage thread; not thread-safe unless an adapter says so.
class Producer {
 public:
  virtual ~Producer() = default;
  /// Queues a record. May block while the log applies backpressure. Readers may not see it before `flush`:
  /// the embedded log appends a topic's records in batches, so a record that must arrive soon (a car's answer
  /// to a command) is followed by a flush. `on_delivery`, if set, is called
  /// (on the thread calling `flush` or `send`) with the record's offset, or an error text; the record it is
  /// given has topic, key and partition, its value may have been moved out.
  using DeliveryCallback = std::function<void(const OutRecord&, int64_t offset, const DeliveryError* error)>;
  virtual void send(OutRecord record, DeliveryCallback on_delivery = nullptr) = 0;
  /// Waits until every record sent so far is acknowledged by the log. Returns the number of records that
  /// failed (0 = all durable). A stage commits its input only after flush returned 0.
  virtual int64_t flush(std::chrono::milliseconds timeout) = 0;
  /// Records sent and neither acknowledged nor failed yet. After a flush that returned N, N equal to this
  /// means none failed: the log is away (a broker restarting) and may still take them all; a log that never
  /// keeps records in flight past a flush says 0.
  virtual int64_t unacknowledged() const { return 0; }
};

/// Partition assignment changes, reported to the consumer's owner on its polling thread.
struct RebalanceListener {
  std::function<void(const std::vector<TopicPartition>&)> on_assigned;
  std::function<void(const std::vector<TopicPartition>&)> on_revoked;
};

/// Reads records as one member of a consumer group. Used by one thread.
class Consumer {
 public:
  virtual ~Consumer() = default;
  /// Joins the group and subscribes to `topics`. Where the group has no committed offset, reading starts at
  /// the earliest retained record.
  virtual void subscribe(const std::vector<std::string>& topics, RebalanceListener listener = {}) = 0;
  /// Up to `max_records` records from the assigned partitions, waiting at most `timeout` for the first.
  virtual std::vector<Record> poll(std::size_t max_records, std::chrono::milliseconds timeout) = 0;
  /// Commits offsets (synchronously). Only offsets of processed records are ever committed.
  virtual void commit(const Offsets& offsets) = 0;
  /// Moves the read position of an assigned partition (replay from an offset).
  virtual void seek(const TopicPartition& tp, int64_t offset) = 0;
  /// Records behind the end of the assigned partitions (from the read position).
  virtual int64_t lag() = 0;
  /// Currently assigned partitions.
  virtual std::vector<TopicPartition> assignment() = 0;
  /// Records this member's read positions jumped over because the log no longer held them: the embedded log
  /// evicted them past a group allowed to lag (Log::allow_lag). Kafka reports none.
  virtual int64_t skipped() const { return 0; }
  /// Leaves the group; the partitions go to the other members.
  virtual void close() = 0;
};

/// Entry point of a log: creates topics, producers and consumers. Thread-safe.
class Log {
 public:
  virtual ~Log() = default;
  virtual void create_topic(const std::string& name, const TopicConfig& config) = 0;
  virtual std::unique_ptr<Producer> producer() = 0;
  virtual std::unique_ptr<Consumer> consumer(const std::string& group) = 0;
  /// Offset one past the newest record of each partition of `topic`.
  virtual std::vector<int64_t> end_offsets(const std::string& topic) = 0;
  /// Offset `group` committed on each partition of `topic` (-1: none), asked without joining the group.
  virtual std::vector<int64_t> committed_offsets(const std::string& group, const std::string& topic) = 0;
  /// Whether records outlive this process (Kafka) or not (the embedded log). Only a durable log replays
  /// after a crash, so only there must a commit wait for state a stage holds back.
  virtual bool durable() const = 0;
  /// Lets `group` fall behind on `topic` rather than hold its producers back: a consumer of derived data
  /// (the score stage) must never stop ingestion. The embedded log then evicts, when a partition is full,
  /// records only such groups still need, and their consumers skip ahead and count it (Consumer::skipped).
  /// Kafka never holds a producer back for a consumer group (retention is by time and size): a no-op there.
  virtual void allow_lag(const std::string& group, const std::string& topic) {}
};

/// Records of `topic` that `group` has not committed yet, summed over the partitions (from offset 0 where it
/// committed nothing): how far behind a stage of another process is. Throws LogError.
int64_t group_lag(Log& log, const std::string& group, const std::string& topic);

/// Stable partition for a key (FNV-1a); the memory log and tests use it.
int32_t partition_for_key(std::string_view key, int32_t partitions);

}  // namespace fleettwin::log
