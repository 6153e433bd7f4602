#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>

#include "log/kafka/kafka_config.h"
#include "log/log.h"

namespace fleettwin::log {

/// A Producer on its own librdkafka handle (idempotent, acks=all). Used by one thread, the stage's: delivery
/// reports, errors and the waiting for queue space are all served by rd_kafka_poll/rd_kafka_flush inside
/// send() and flush(), so delivery callbacks run on that thread and need no locking.
class KafkaProducer final : public Producer {
 public:
  explicit KafkaProducer(const KafkaConfig& config);
  /// Waits up to operation_timeout for outstanding records, then purges the rest. Delivery callbacks are
  /// not called from here: their owners may already be gone.
  ~KafkaProducer() override;
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  /// Blocks (serving delivery reports) while librdkafka's queue is full instead of dropping the record. An
  /// empty key is sent as no key (spread over partitions by the partitioner, as Kafka does).
  /// A record librdkafka refuses outright (e.g. a partition the topic does not have) is reported as a failed
  /// delivery. Throws LogError after a fatal producer error.
  void send(OutRecord record, DeliveryCallback on_delivery) override;
  /// Records that failed since the last flush, plus records still unacknowledged when `timeout` ran out.
  /// Throws LogError after a fatal producer error (the failed records' callbacks have run by then).
  int64_t flush(std::chrono::milliseconds timeout) override;
  int64_t unacknowledged() const override { return _in_flight; }

 private:
  /// Owns the record until its delivery report: librdkafka reads key and value from here without copying.
  struct Delivery {
    OutRecord record;
    DeliveryCallback callback;
  };

  /// Errors a resend of the same record cannot overcome (DeliveryError::permanent).
  static bool permanent_error(rd_kafka_resp_err_t err);
  static void on_report(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  void report(Delivery& delivery, rd_kafka_resp_err_t err, int32_t partition, int64_t offset);
  /// After a fatal error: purges what is queued, serves its failure reports, then throws the error.
  void fail_queued_if_fatal();
  bool fatal();
  void throw_if_fatal();
  void rethrow_callback_error();

  KafkaOptions _options;
  RdPtr<rd_kafka_t> _rk;
  int64_t _in_flight = 0;  ///< handed to librdkafka, report not yet served
  int64_t _failed = 0;     ///< failed reports since the last flush
  bool _closing = false;
  std::exception_ptr _callback_error;  ///< a callback threw inside librdkafka's C frames; rethrown after
};

}  // namespace fleettwin::log
