#include "log/kafka/kafka_producer.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <utility>

namespace fleettwin::log {

KafkaProducer::KafkaProducer(const KafkaConfig& config) : _options(config.options()) {
  auto conf = config.conf(HandleKind::kProducer);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaProducer::on_report);
  rd_kafka_conf_set_opaque(conf.get(), this);
  _rk = KafkaConfig::new_handle(HandleKind::kProducer, std::move(conf));
}

KafkaProducer::~KafkaProducer() {
  _closing = true;
  // After a fatal error nothing queued will ever be delivered: do not wait the operation timeout for it.
  if (fatal()) rd_kafka_purge(_rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(_rk.get(), timeout_ms(_options.operation_timeout));
  if (_in_flight > 0) {
    spdlog::warn("kafka producer destroyed with {} unacknowledged records; purging them", _in_flight);
    rd_kafka_purge(_rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // Purged records get a report each; serving them frees their Delivery.
    rd_kafka_flush(_rk.get(), 1000);
  }
}

void KafkaProducer::send(OutRecord record, DeliveryCallback on_delivery) {
  throw_if_fatal();
  auto delivery = std::make_unique<Delivery>(Delivery{std::move(record), std::move(on_delivery)});
  const OutRecord& r = delivery->record;
  RdPtr<rd_kafka_headers_t> headers;
  if (!r.headers.empty()) {
    headers.reset(rd_kafka_headers_new(r.headers.size()));
    for (const auto& h : r.headers)
      rd_kafka_header_add(headers.get(), h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
  }
  while (true) {
    // No RD_KAFKA_MSG_F_COPY: key and value stay alive in *delivery until the report. An empty key goes out
    // as no key, which the partitioner spreads over the partitions (DLQ records without a car id).
    const rd_kafka_resp_err_t err =
        rd_kafka_producev(_rk.get(), RD_KAFKA_V_TOPIC(r.topic.c_str()),
                          RD_KAFKA_V_PARTITION(r.partition >= 0 ? r.partition : RD_KAFKA_PARTITION_UA),
                          RD_KAFKA_V_KEY(r.key.empty() ? nullptr : r.key.data(), r.key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                          RD_KAFKA_V_HEADERS(headers.get()), RD_KAFKA_V_TIMESTAMP(r.timestamp_ms),
                          RD_KAFKA_V_OPAQUE(delivery.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      (void)headers.release();   // owned by the queued message now
      (void)delivery.release();  // freed by on_report
      ++_in_flight;
      break;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Backpressure (DESIGN.md §5): wait for reports to make room rather than drop the record.
      rd_kafka_poll(_rk.get(), 100);
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) throw_if_fatal();
    ++_failed;
    report(*delivery, err, r.partition, -1);
    break;
  }
  // Serve reports that are ready so their queue and our in-flight records stay small.
  rd_kafka_poll(_rk.get(), 0);
  rethrow_callback_error();
}

int64_t KafkaProducer::flush(std::chrono::milliseconds timeout) {
  rd_kafka_flush(_rk.get(), timeout_ms(timeout));
  rethrow_callback_error();
  fail_queued_if_fatal();
  // Unacknowledged at the deadline counts as failed: the caller must not commit the input of these.
  const int64_t failed = _failed + _in_flight;
  _failed = 0;
  return failed;
}

void KafkaProducer::on_report(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto& self = *static_cast<KafkaProducer*>(opaque);
  std::unique_ptr<Delivery> delivery(static_cast<Delivery*>(m->_private));
  --self._in_flight;
  if (m->err) ++self._failed;
  self.report(*delivery, m->err, m->partition, m->offset);
}

void KafkaProducer::report(Delivery& delivery, rd_kafka_resp_err_t err, int32_t partition, int64_t offset) {
  if (!delivery.callback || _closing) return;
  delivery.record.partition = partition;
  try {
    if (err) {
      const DeliveryError error(error_text(err), permanent_error(err));
      delivery.callback(delivery.record, -1, &error);
    } else {
      delivery.callback(delivery.record, offset, nullptr);
    }
  } catch (...) {
    // Exceptions must not unwind through librdkafka's C frames.
    if (!_callback_error) _callback_error = std::current_exception();
  }
}

bool KafkaProducer::permanent_error(rd_kafka_resp_err_t err) {
  switch (err) {
    // The record itself is the problem: over message.max.bytes (librdkafka's or the broker's), or a record
    // the broker will not store (e.g. no key on a compacted topic). Retries fail the same way.
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
      return true;
    default:
      return false;  // broker down, timeouts, unknown partitions, purges: a later attempt may succeed
  }
}

bool KafkaProducer::fatal() {
  char errstr[8];
  return rd_kafka_fatal_error(_rk.get(), errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

void KafkaProducer::fail_queued_if_fatal() {
  if (!fatal()) return;
  // librdkafka fails what is queued once it raised a fatal error, but rd_kafka_flush can return before those
  // reports are served (1 run in about 900 under load): purge and serve them here, so every queued record
  // gets its callback before the error surfaces, and none waits for the destructor's timeout.
  rd_kafka_purge(_rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (_in_flight > 0 && std::chrono::steady_clock::now() < deadline) rd_kafka_poll(_rk.get(), 50);
  rethrow_callback_error();
  throw_if_fatal();
}

void KafkaProducer::throw_if_fatal() {
  char errstr[512];
  if (rd_kafka_fatal_error(_rk.get(), errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw LogError(std::string("kafka producer fatal error: ") + errstr);
}

void KafkaProducer::rethrow_callback_error() {
  if (_callback_error) std::rethrow_exception(std::exchange(_callback_error, nullptr));
}

}  // namespace fleettwin::log
