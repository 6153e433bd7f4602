#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "log/kafka/kafka_config.h"
#include "log/log.h"

namespace fleettwin::log {

/// A Consumer on its own librdkafka handle: one member of a consumer group (cooperative-sticky by default),
/// no auto-commit, no auto offset store. Used by one thread: the main queue is forwarded to the consumer
/// queue, so rebalances, errors and the RebalanceListener all run inside poll(), commit() and close() on
/// that thread.
class KafkaConsumer final : public Consumer {
 public:
  KafkaConsumer(const KafkaConfig& config, const std::string& group);
  /// Leaves the group if close() was not called.
  ~KafkaConsumer() override;
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  void subscribe(const std::vector<std::string>& topics, RebalanceListener listener) override;
  /// Waits up to `timeout` for the first record, then takes only what librdkafka has already fetched. A
  /// rebalance during the call drops the batch's records of revoked partitions: they are not returned, so
  /// this member neither processes nor commits them; their new owner reads them from the last commit.
  std::vector<Record> poll(std::size_t max_records, std::chrono::milliseconds timeout) override;
  /// Synchronous. Offsets of partitions no longer assigned are skipped (their new owner commits them). When
  /// the group is rebalancing, the offsets are committed from the rebalance callback, where the generation
  /// is valid and no rejoin is in flight (a commit racing the rejoin would fail with ILLEGAL_GENERATION and
  /// cost the whole assignment). Throws LogError when the commit fails or does not complete within
  /// operation_timeout; then nothing new is committed. Called from the RebalanceListener's on_revoked, it
  /// commits the partitions being revoked too (they are still this member's until the listener returns),
  /// at once; TransientLogError when the group refuses it there (their next owner replays from the previous
  /// commit: at-least-once, DESIGN.md §5).
  void commit(const Offsets& offsets) override;
  /// Throws LogError for a partition that is not assigned to this member.
  void seek(const TopicPartition& tp, int64_t offset) override;
  /// High watermarks cached from fetch responses (queried where none is cached yet) minus read positions.
  /// A partition the cluster cannot answer for right now counts as 1, so that a drain does not stop on it.
  int64_t lag() override;
  std::vector<TopicPartition> assignment() override { return _assignment; }
  /// rd_kafka_consumer_close: revokes (calling on_revoked) and leaves the group. Idempotent.
  void close() override;

 private:
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque);
  void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void revoked(const std::vector<TopicPartition>& tps, bool lost);
  void call_listener(const std::function<void(const std::vector<TopicPartition>&)>& fn,
                     const std::vector<TopicPartition>& tps);
  /// One synchronous commit attempt; `where` names the first failed partition.
  rd_kafka_resp_err_t commit_once(const std::map<TopicPartition, int64_t>& offsets,
                                  std::chrono::steady_clock::time_point deadline, std::string& where);
  /// commit() called from inside a rebalance callback (the listener's): one synchronous commit of `offsets`,
  /// retried on transient errors until `deadline`; throws TransientLogError when refused.
  void commit_in_rebalance(const std::map<TopicPartition, int64_t>& offsets,
                           std::chrono::steady_clock::time_point deadline);
  /// Drops `tps` from the assignment and the known read positions.
  void forget(const std::vector<TopicPartition>& tps);
  /// Commits what commit() is waiting to commit, of the partitions in `owned` (all when null), and forgets
  /// the rest; called from the rebalance callback.
  void commit_pending(const std::vector<TopicPartition>* owned);
  /// Serves the consumer queue (rebalance callbacks) until `done` or `deadline`; records that arrive are
  /// kept for the next poll().
  void serve(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline);
  void rethrow_pending();
  void wait_for_first_assignment();
  /// Read position of an assigned partition whose position is not known yet: the group's commit, else
  /// where auto.offset.reset starts. -1 when the cluster cannot tell now.
  int64_t start_position(const TopicPartition& tp, int64_t low, int64_t high);

  KafkaOptions _options;
  bool _reset_to_latest = false;
  RdPtr<rd_kafka_t> _rk;
  RebalanceListener _listener;
  std::vector<TopicPartition> _assignment;
  std::map<TopicPartition, int64_t> _positions;   ///< next offset to read, where known
  std::vector<Record> _batch;                     ///< the batch poll() is filling; revoked() prunes it
  std::deque<Record> _buffer;                     ///< fetched while commit() waited; returned by poll() first
  std::map<TopicPartition, int64_t> _committing;  ///< what commit() waits to commit; see commit()
  std::string _commit_error;                      ///< a commit from the rebalance callback failed
  std::exception_ptr _pending;                    ///< thrown inside librdkafka's C frames; rethrown after
  bool _subscribed = false;
  bool _closed = false;
  int _assigns_until_settled = 0;  ///< assignment callbacks to come before the member is steady again
  bool _ever_assigned = false;     ///< an assignment (possibly empty) arrived since subscribe
  bool _leak = false;              ///< see wait_for_first_assignment
  bool _in_rebalance = false;      ///< inside on_rebalance: commit() cannot wait for a callback there
};

}  // namespace fleettwin::log
