#include "app/log_factory.h"

#include "config/keys.h"
#include "log/kafka/kafka_log.h"

namespace fleettwin::app {

namespace keys = config::keys;

std::map<std::string, std::string> kafka_settings(const config::Config& config, const std::string& brokers) {
  auto settings = log::KafkaLog::settings_from_config(config.passthrough(), "kafka.");
  settings["bootstrap.servers"] = brokers;
  return settings;
}

log::TopicConfig topic_config(const config::Config& config) {
  log::TopicConfig topics;
  topics.partitions = static_cast<int32_t>(config.get(keys::log_partitions));
  topics.replication = static_cast<int32_t>(config.get(keys::log_replication));
  topics.capacity = config.get(keys::log_capacity);
  return topics;
}

}  // namespace fleettwin::app
