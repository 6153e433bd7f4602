#pragma once

#include <map>
#include <string>

#include "config/config.h"
#include "log/log.h"

namespace fleettwin::app {

/// The librdkafka settings of a KafkaLog on `brokers`: the configuration's `kafka.*` keys (--kafka-set)
/// plus `bootstrap.servers`.
std::map<std::string, std::string> kafka_settings(const config::Config& config, const std::string& brokers);

/// How fleettwin creates its topics: partitions, replication and capacity from the `log.*` keys.
log::TopicConfig topic_config(const config::Config& config);

}  // namespace fleettwin::app
