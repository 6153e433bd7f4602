#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "log/kafka/kafka_log.h"
#include "log/log.h"

namespace fleettwin::log {

/// Frees librdkafka objects, one overload per type, so that RdPtr<T> owns any of them. Any thread.
struct RdDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
  void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
  void operator()(rd_kafka_topic_partition_list_t* p) const { rd_kafka_topic_partition_list_destroy(p); }
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
  void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
  void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
  void operator()(rd_kafka_topic_t* p) const { rd_kafka_topic_destroy(p); }
  void operator()(rd_kafka_error_t* p) const { rd_kafka_error_destroy(p); }
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};

template <class T>
using RdPtr = std::unique_ptr<T, RdDeleter>;

/// Which kind of librdkafka handle a conf is for: each kind gets its own fixed settings.
enum class HandleKind : std::uint8_t { kProducer, kConsumer, kAdmin };

/// The settings of one KafkaLog, validated once, and the librdkafka confs built from them. Immutable after
/// construction, so the log and every producer and consumer share it from any thread.
class KafkaConfig {
 public:
  /// Throws LogError naming the key for unknown keys, bad values and attempts to change a fixed setting.
  KafkaConfig(std::map<std::string, std::string> settings, KafkaOptions options);

  /// A conf for a handle of `kind`: defaults, then the user's settings, then the fixed settings, plus the
  /// log and error callbacks. `group` is the consumer's group.id.
  RdPtr<rd_kafka_conf_t> conf(HandleKind kind, const std::string& group = {}) const;
  /// rd_kafka_new; takes the conf only on success, throws LogError with librdkafka's text otherwise.
  static RdPtr<rd_kafka_t> new_handle(HandleKind kind, RdPtr<rd_kafka_conf_t> conf);

  const KafkaOptions& options() const { return _options; }
  /// The user's value of a setting, or `fallback`.
  std::string setting(const std::string& key, const std::string& fallback) const;

 private:
  std::map<std::string, std::string> _settings;
  KafkaOptions _options;
};

/// Milliseconds for librdkafka's int timeouts, clamped to [0, INT_MAX].
int timeout_ms(std::chrono::milliseconds timeout);
/// Milliseconds left until `deadline`, at least 0.
int remaining_ms(std::chrono::steady_clock::time_point deadline);
std::string error_text(rd_kafka_resp_err_t err);
std::vector<TopicPartition> to_topic_partitions(const rd_kafka_topic_partition_list_t& list);
RdPtr<rd_kafka_topic_partition_list_t> to_partition_list(const std::vector<TopicPartition>& tps);

}  // namespace fleettwin::log
