#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "core/metrics.h"
#include "log/log.h"
#include "registry/client.h"
#include "stages/uplink/spool.h"
#include "stages/uplink/uplink_capture.h"

namespace fleettwin::stages {

/// Where the uplink sends: central's log and registry, the site's name and its own registry.
struct UplinkTarget {
  log::Log* central = nullptr;
  std::string site;
  std::shared_ptr<registry::SchemaRegistryClient> edge_registry;
  std::shared_ptr<registry::SchemaRegistryClient> central_registry;
  log::TopicConfig topics;
  std::size_t batch = 5000;
};

/// The central topic of an edge topic: `<site>.<topic>`, MirrorMaker 2's DefaultReplicationPolicy with the
/// site as source alias, so the uplink and MM2 give central the same layout.
std::string central_topic(const std::string& site, const std::string& topic);

/// Sends the spool to central, oldest first, on its own thread: one batch at a time, produced with the
/// Kafka adapter (idempotent, acks=all, key = car, so each car's records stay in order), deleted from the
/// spool only once central acknowledged every record of it. A batch central did not take is sent again
/// (central is idempotent by (car, seq)); while central is unreachable the spool grows and the state says
/// "spooling". Avro records (telemetry, scores, alerts) get the id their schema has in central's registry
/// instead of the edge's (registered under `<site>.<topic>-value`, the mapping cached).
class UplinkSender {
 public:
  UplinkSender(std::shared_ptr<Spool> spool, UplinkTarget target, std::shared_ptr<UplinkStatus> status,
               core::Metrics& metrics);
  ~UplinkSender();
  UplinkSender(const UplinkSender&) = delete;
  UplinkSender& operator=(const UplinkSender&) = delete;

  void start();
  /// Stops after the batch in flight (what is not acknowledged stays in the spool) and joins.
  void stop();

  /// The edge value with its Confluent header's schema id replaced by central's (values of other topics,
  /// and values without the header, unchanged). Throws SchemaRegistryError when a registry cannot answer.
  std::string rewrite(const std::string& topic, const std::string& value);

 private:
  void run();
  /// Creates the site's topics on central once; false while central is unreachable.
  bool ensure_topics();
  /// Sends one batch and waits for every acknowledgement: true when central took all of it.
  bool send(const std::vector<SpooledRecord>& batch);
  /// Sleeps up to `ms` unless stopped; false when stopped.
  bool pause(int64_t ms);

  std::shared_ptr<Spool> _spool;
  UplinkTarget _target;
  std::shared_ptr<UplinkStatus> _status;
  std::unordered_map<int32_t, int32_t> _central_ids;  ///< edge schema id -> central (sender thread)
  std::unique_ptr<log::Producer> _producer;
  bool _topics_ready = false;
  std::atomic<bool> _stop{false};
  std::thread _thread;
  core::Gauge& _bytes;
  core::Gauge& _state;
  core::Counter& _sent;
  core::Counter& _failed_batches;
};

}  // namespace fleettwin::stages
