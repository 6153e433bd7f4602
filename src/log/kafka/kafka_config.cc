#include "log/kafka/kafka_config.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstring>
#include <utility>

namespace fleettwin::log {

namespace {

struct Setting {
  const char* key;
  const char* value;
};

// Defaults a user may override. murmur2_random: the Java client's partitioner, so Kafka Streams, Connect and
// other Java producers put a car's records on the same partition as we do. earliest: the Log contract reads
// from the earliest retained record where a group has no commit.
constexpr std::array kCommonDefaults{Setting{"client.id", "fleettwin"}};
constexpr std::array kProducerDefaults{Setting{"partitioner", "murmur2_random"}};
constexpr std::array kConsumerDefaults{Setting{"partition.assignment.strategy", "cooperative-sticky"},
                                       Setting{"auto.offset.reset", "earliest"}};

// Settings the guarantees rest on: no duplicates or reordering on retry, durable before acknowledged, and
// offsets committed only by Consumer::commit (DESIGN.md §5).
constexpr std::array kProducerFixed{Setting{"enable.idempotence", "true"}, Setting{"acks", "all"}};
constexpr std::array kConsumerFixed{Setting{"enable.auto.commit", "false"},
                                    Setting{"enable.auto.offset.store", "false"}};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// librdkafka spells the same value several ways ("all" / "-1", "true" / "1").
std::string canonical(const std::string& key, const std::string& value) {
  auto v = lower(value);
  if ((key == "acks" || key == "request.required.acks") && v == "-1") return "all";
  if (v == "1" && key != "acks" && key != "request.required.acks") return "true";
  if (v == "0" && key != "acks" && key != "request.required.acks") return "false";
  return v;
}

void check_fixed(const std::map<std::string, std::string>& settings, const std::string& key,
                 const char* value) {
  auto it = settings.find(key);
  if (it != settings.end() && canonical(key, it->second) != canonical(key, value))
    throw LogError("kafka setting '" + key + "' must be '" + value +
                   "': fleettwin's delivery guarantees depend on it");
}

void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    throw LogError("kafka setting '" + key + "': " + errstr);
}

/// librdkafka logs from its own threads; spdlog is thread-safe.
void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // Every setting goes to every handle on purpose (one settings map for all), so "X is a consumer property
  // and will be ignored by this producer instance" is expected, not a problem.
  if (std::strcmp(fac, "CONFWARN") == 0 && std::strstr(buf, "will be ignored by this")) {
    spdlog::debug("kafka {} {}: {}", rd_kafka_name(rk), fac, buf);
    return;
  }
  const auto lvl = level <= 2   ? spdlog::level::critical
                   : level == 3 ? spdlog::level::err
                   : level == 4 ? spdlog::level::warn
                   : level <= 6 ? spdlog::level::info
                                : spdlog::level::debug;
  spdlog::log(lvl, "kafka {} {}: {}", rd_kafka_name(rk), fac, buf);
}

/// Transient errors (a broker down, all brokers down) are retried by librdkafka itself; they are logged here.
/// Fatal errors are picked up by the producer and consumer with rd_kafka_fatal_error on their own thread.
void error_cb(rd_kafka_t* rk, int err, const char* reason, void*) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    spdlog::error("kafka {}: fatal error: {}", rd_kafka_name(rk), reason);
  } else {
    spdlog::warn("kafka {}: {}: {}", rd_kafka_name(rk),
                 rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
  }
}

}  // namespace

KafkaConfig::KafkaConfig(std::map<std::string, std::string> settings, KafkaOptions options)
    : _settings(std::move(settings)), _options(options) {
  for (const auto& s : kProducerFixed) check_fixed(_settings, s.key, s.value);
  check_fixed(_settings, "request.required.acks", "all");  // librdkafka's other name for acks
  for (const auto& s : kConsumerFixed) check_fixed(_settings, s.key, s.value);
  if (_settings.count("group.id"))
    throw LogError("kafka setting 'group.id' is chosen per consumer by fleettwin; remove it");
  // Build one conf of each kind now: an unknown key or a bad value fails at startup, not at the first use.
  conf(HandleKind::kProducer);
  conf(HandleKind::kConsumer, "fleettwin.validate");
  conf(HandleKind::kAdmin);
}

RdPtr<rd_kafka_conf_t> KafkaConfig::conf(HandleKind kind, const std::string& group) const {
  RdPtr<rd_kafka_conf_t> conf(rd_kafka_conf_new());
  for (const auto& s : kCommonDefaults) set(conf.get(), s.key, s.value);
  if (kind == HandleKind::kProducer)
    for (const auto& s : kProducerDefaults) set(conf.get(), s.key, s.value);
  if (kind == HandleKind::kConsumer)
    for (const auto& s : kConsumerDefaults) set(conf.get(), s.key, s.value);
  for (const auto& [key, value] : _settings) set(conf.get(), key, value);
  if (kind == HandleKind::kProducer)
    for (const auto& s : kProducerFixed) set(conf.get(), s.key, s.value);
  if (kind == HandleKind::kConsumer) {
    for (const auto& s : kConsumerFixed) set(conf.get(), s.key, s.value);
    set(conf.get(), "group.id", group);
  }
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  rd_kafka_conf_set_error_cb(conf.get(), error_cb);
  return conf;
}

RdPtr<rd_kafka_t> KafkaConfig::new_handle(HandleKind kind, RdPtr<rd_kafka_conf_t> conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(kind == HandleKind::kConsumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER,
                                conf.get(), errstr, sizeof errstr);
  if (!rk) throw LogError(std::string("kafka: cannot create client: ") + errstr);
  (void)conf.release();  // owned by rk now
  return RdPtr<rd_kafka_t>(rk);
}

std::string KafkaConfig::setting(const std::string& key, const std::string& fallback) const {
  auto it = _settings.find(key);
  return it == _settings.end() ? fallback : it->second;
}

int timeout_ms(std::chrono::milliseconds timeout) {
  return static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, INT_MAX));
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  return timeout_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
}

std::string error_text(rd_kafka_resp_err_t err) {
  return std::string(rd_kafka_err2name(err)) + " (" + rd_kafka_err2str(err) + ")";
}

std::vector<TopicPartition> to_topic_partitions(const rd_kafka_topic_partition_list_t& list) {
  std::vector<TopicPartition> out;
  out.reserve(static_cast<std::size_t>(list.cnt));
  for (int i = 0; i < list.cnt; ++i) out.push_back({list.elems[i].topic, list.elems[i].partition});
  return out;
}

RdPtr<rd_kafka_topic_partition_list_t> to_partition_list(const std::vector<TopicPartition>& tps) {
  RdPtr<rd_kafka_topic_partition_list_t> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(std::max<std::size_t>(tps.size(), 1))));
  for (const auto& tp : tps) rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  return list;
}

}  // namespace fleettwin::log
