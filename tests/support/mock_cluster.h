#pragma once

// librdkafka's in-process mock cluster (rdkafka_mock.h) for the tests of the Kafka adapter and of what runs
// on it: real protocol, real client, faults injected (broker down, request errors). Link PkgConfig::RDKAFKA.
// Header-only; test main thread.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fleettwin::testing {

// Kafka protocol ApiKeys; librdkafka's names for them (RD_KAFKAP_*) are in a private header.
constexpr int16_t kProduce = 0;
constexpr int16_t kOffsetCommit = 8;
constexpr int16_t kInitProducerId = 22;

/// A mock cluster owned by the test. Standalone (rd_kafka_mock_cluster_new) rather than
/// `test.mock.num.brokers` in the settings: that would give every client handle a cluster of its own, and a
/// KafkaLog makes one handle per producer and consumer.
class MockCluster {
 public:
  explicit MockCluster(int brokers) {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // This handle only hosts the cluster; it never connects, so its "no bootstrap.servers" notice is noise.
    rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);
    _rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!_rk) throw std::runtime_error(errstr);
    _mc = rd_kafka_mock_cluster_new(_rk, brokers);
    if (!_mc) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(_mc);
    rd_kafka_destroy(_rk);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  std::string bootstrap() const { return rd_kafka_mock_cluster_bootstraps(_mc); }
  void topic(const std::string& name, int partitions, int replication = 3) {
    if (rd_kafka_mock_topic_create(_mc, name.c_str(), partitions, replication))
      throw std::runtime_error("mock topic " + name);
  }
  void push_errors(int16_t api, const std::vector<rd_kafka_resp_err_t>& errors) {
    rd_kafka_mock_push_request_errors_array(_mc, api, errors.size(), errors.data());
  }
  void leader(const std::string& topic, int32_t partition, int32_t broker) {
    if (rd_kafka_mock_partition_set_leader(_mc, topic.c_str(), partition, broker))
      throw std::runtime_error("mock leader " + topic);
  }
  /// The broker that coordinates consumer group `group` (offsets, membership).
  void group_coordinator(const std::string& group, int32_t broker) {
    if (rd_kafka_mock_coordinator_set(_mc, "group", group.c_str(), broker))
      throw std::runtime_error("mock coordinator " + group);
  }
  void broker_down(int32_t id) { rd_kafka_mock_broker_set_down(_mc, id); }
  void broker_up(int32_t id) { rd_kafka_mock_broker_set_up(_mc, id); }

 private:
  rd_kafka_t* _rk = nullptr;
  rd_kafka_mock_cluster_t* _mc = nullptr;
};

}  // namespace fleettwin::testing
