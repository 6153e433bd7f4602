#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "log/log.h"

namespace fleettwin::log {

/// Knobs of the Kafka adapter that are not librdkafka properties.
struct KafkaOptions {
  /// Bound of each blocking call to the cluster: topic creation, metadata, end offsets, commits, seeks, the
  /// flush a producer does when it is destroyed. A call that runs out throws LogError.
  std::chrono::milliseconds operation_timeout{30000};
};

class KafkaConfig;

/// The distributed log: Apache Kafka through librdkafka. Producers are idempotent with acks=all and report
/// every delivery; consumers join a group with the cooperative-sticky assignor, never auto-commit, and
/// commit only what the stage processed. `settings` are librdkafka properties (bootstrap.servers, SASL/SSL,
/// tuning; the app passes its `kafka.*` config keys without the prefix) applied to every producer, consumer
/// and admin handle; an unknown key or a bad value throws LogError naming the key. Settings the guarantees
/// depend on (enable.idempotence, acks, enable.auto.commit, enable.auto.offset.store, group.id) cannot be
/// changed. Thread-safe; each producer and consumer it makes has its own librdkafka handle and is used by one
/// thread.
class KafkaLog final : public Log {
 public:
  explicit KafkaLog(std::map<std::string, std::string> settings, KafkaOptions options = {});
  ~KafkaLog() override;
  KafkaLog(const KafkaLog&) = delete;
  KafkaLog& operator=(const KafkaLog&) = delete;

  /// Creates the topic (CreateTopics; `compacted` sets cleanup.policy=compact) and waits until its
  /// partitions have leaders. An existing topic is left as it is.
  void create_topic(const std::string& name, const TopicConfig& config) override;
  std::unique_ptr<Producer> producer() override;
  std::unique_ptr<Consumer> consumer(const std::string& group) override;
  /// Throws LogError for a topic the cluster does not have.
  std::vector<int64_t> end_offsets(const std::string& topic) override;
  /// One round trip to the group coordinator (on a handle that never joins the group) per call.
  std::vector<int64_t> committed_offsets(const std::string& group, const std::string& topic) override;
  bool durable() const override { return true; }

  /// Committed offset of `group` on a partition (-1: none). For tools and tests: one round trip per call.
  int64_t committed(const std::string& group, const TopicPartition& tp);

  /// The `prefix`ed keys of `config`, without the prefix: the settings argument from app config.
  static std::map<std::string, std::string> settings_from_config(
      const std::map<std::string, std::string>& config, std::string_view prefix = "kafka.");

 private:
  struct Admin;
  std::vector<int64_t> fetch_committed(const std::string& group, const std::vector<TopicPartition>& tps);
  std::shared_ptr<const KafkaConfig> _config;
  std::unique_ptr<Admin> _admin;
};

}  // namespace fleettwin::log
