#include "log/kafka/kafka_log.h"

#include <thread>
#include <utility>

#include "log/kafka/kafka_config.h"
#include "log/kafka/kafka_consumer.h"
#include "log/kafka/kafka_producer.h"

namespace fleettwin::log {

/// The admin handle: topic creation, metadata and end offsets. librdkafka's admin and metadata calls are
/// thread-safe, so every thread using the KafkaLog shares it.
struct KafkaLog::Admin {
  RdPtr<rd_kafka_t> rk;
};

namespace {

/// Partition count of `topic`, 0 when the cluster does not know it, -1 while a partition has no leader.
/// Throws LogError when it cannot ask.
int partition_count(rd_kafka_t* rk, const std::string& topic, int timeout) {
  // Asks for all topics: a request naming the topic would create it on brokers that auto-create topics
  // (librdkafka producers always allow that), and a missing topic must stay missing.
  const rd_kafka_metadata_t* md = nullptr;
  if (const auto err = rd_kafka_metadata(rk, 1, nullptr, &md, timeout))
    throw LogError("kafka metadata for " + topic + ": " + error_text(err));
  RdPtr<const rd_kafka_metadata_t> owned(md);
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return 0;
    if (t.err) throw LogError("kafka metadata for " + topic + ": " + error_text(t.err));
    for (int p = 0; p < t.partition_cnt; ++p)
      if (t.partitions[p].err || t.partitions[p].leader < 0) return -1;  // not ready yet
    return t.partition_cnt;
  }
  return 0;
}

}  // namespace

KafkaLog::KafkaLog(std::map<std::string, std::string> settings, KafkaOptions options)
    : _config(std::make_shared<const KafkaConfig>(std::move(settings), options)),
      _admin(std::make_unique<Admin>()) {
  _admin->rk = KafkaConfig::new_handle(HandleKind::kAdmin, _config->conf(HandleKind::kAdmin));
}

KafkaLog::~KafkaLog() = default;

void KafkaLog::create_topic(const std::string& name, const TopicConfig& config) {
  rd_kafka_t* rk = _admin->rk.get();
  const int timeout = timeout_ms(_config->options().operation_timeout);
  char errstr[512];
  RdPtr<rd_kafka_NewTopic_t> topic(
      rd_kafka_NewTopic_new(name.c_str(), config.partitions, config.replication, errstr, sizeof errstr));
  if (!topic) throw LogError("kafka create topic " + name + ": " + errstr);
  if (config.compacted) {
    if (const auto err = rd_kafka_NewTopic_set_config(topic.get(), "cleanup.policy", "compact"))
      throw LogError("kafka create topic " + name + ": " + error_text(err));
  }
  RdPtr<rd_kafka_AdminOptions_t> options(rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout, errstr, sizeof errstr);
  RdPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk));
  rd_kafka_NewTopic_t* topics[] = {topic.get()};
  rd_kafka_CreateTopics(rk, topics, 1, options.get(), queue.get());
  // The request carries its own timeout; the margin only covers the result's way back.
  RdPtr<rd_kafka_event_t> ev(rd_kafka_queue_poll(queue.get(), timeout + 5000));
  if (!ev) throw LogError("kafka create topic " + name + ": timed out");
  if (const auto err = rd_kafka_event_error(ev.get()))
    throw LogError("kafka create topic " + name + ": " + error_text(err) + ": " +
                   rd_kafka_event_error_string(ev.get()));
  const auto* result = rd_kafka_event_CreateTopics_result(ev.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  bool existed = false;
  for (size_t i = 0; i < count; ++i) {
    const auto err = rd_kafka_topic_result_error(results[i]);
    // Another process may have created it an instant ago: wait for its leaders below all the same, or this
    // process's first end_offsets() may find no partitions yet.
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      existed = true;
      break;
    }
    if (err) {
      const char* text = rd_kafka_topic_result_error_string(results[i]);
      throw LogError("kafka create topic " + name + ": " + error_text(err) +
                     (text ? std::string(": ") + text : ""));
    }
  }
  // CreateTopics returns before every broker knows the topic; wait for leaders so that the first producer
  // and consumer do not start with "unknown topic". An existing topic may have fewer partitions than asked
  // for (created by an older configuration): any leader-complete count will do then.
  const auto deadline = std::chrono::steady_clock::now() + _config->options().operation_timeout;
  auto ready = [&](int count) {
    return config.partitions > 0 && !existed ? count == config.partitions : count > 0;
  };
  while (!ready(partition_count(rk, name, remaining_ms(deadline)))) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw LogError("kafka create topic " + name + ": partitions have no leader yet");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::unique_ptr<Producer> KafkaLog::producer() { return std::make_unique<KafkaProducer>(*_config); }

std::unique_ptr<Consumer> KafkaLog::consumer(const std::string& group) {
  return std::make_unique<KafkaConsumer>(*_config, group);
}

std::vector<int64_t> KafkaLog::end_offsets(const std::string& topic) {
  rd_kafka_t* rk = _admin->rk.get();
  const auto deadline = std::chrono::steady_clock::now() + _config->options().operation_timeout;
  // Leadership moves (a topic just created, a broker restarting): until the deadline, a partition without a
  // leader or a stale leader is asked again rather than failing the caller (a role starting beside others).
  auto transient = [](rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
           err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
           err == RD_KAFKA_RESP_ERR__TIMED_OUT;
  };
  auto pause = [&] {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return true;
  };
  int partitions = partition_count(rk, topic, remaining_ms(deadline));
  while (partitions < 0 && pause()) partitions = partition_count(rk, topic, remaining_ms(deadline));
  if (partitions == 0) throw LogError("kafka end offsets: no topic " + topic);
  if (partitions < 0) throw LogError("kafka end offsets: " + topic + " has partitions without a leader");
  std::vector<int64_t> out(static_cast<std::size_t>(partitions));
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, remaining_ms(deadline));
    while (err && transient(err) && pause())
      err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, remaining_ms(deadline));
    if (err)
      throw LogError("kafka end offsets of " + topic + "[" + std::to_string(p) + "]: " + error_text(err));
    out[static_cast<std::size_t>(p)] = high;
  }
  return out;
}

int64_t KafkaLog::committed(const std::string& group, const TopicPartition& tp) {
  return fetch_committed(group, {tp}).front();
}

std::vector<int64_t> KafkaLog::committed_offsets(const std::string& group, const std::string& topic) {
  const auto ends = end_offsets(topic);
  std::vector<TopicPartition> tps;
  tps.reserve(ends.size());
  for (std::size_t p = 0; p < ends.size(); ++p) tps.push_back({topic, static_cast<int32_t>(p)});
  return fetch_committed(group, tps);
}

std::vector<int64_t> KafkaLog::fetch_committed(const std::string& group,
                                               const std::vector<TopicPartition>& tps) {
  // A consumer handle that never subscribes does not join the group; it only asks the coordinator.
  auto rk = KafkaConfig::new_handle(HandleKind::kConsumer, _config->conf(HandleKind::kConsumer, group));
  auto list = to_partition_list(tps);
  if (const auto err =
          rd_kafka_committed(rk.get(), list.get(), timeout_ms(_config->options().operation_timeout)))
    throw LogError("kafka committed offset: " + error_text(err));
  std::vector<int64_t> out;
  out.reserve(static_cast<std::size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err) throw LogError("kafka committed offset: " + error_text(list->elems[i].err));
    out.push_back(list->elems[i].offset >= 0 ? list->elems[i].offset : -1);
  }
  rd_kafka_consumer_close(rk.get());
  return out;
}

std::map<std::string, std::string> KafkaLog::settings_from_config(
    const std::map<std::string, std::string>& config, std::string_view prefix) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : config)
    if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0)
      out.emplace(key.substr(prefix.size()), value);
  return out;
}

}  // namespace fleettwin::log
