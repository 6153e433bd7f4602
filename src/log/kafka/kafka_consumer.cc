#include "log/kafka/kafka_consumer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include "log/transient_error.h"

namespace fleettwin::log {

namespace {

/// Records kept while commit() waits for a rebalance. librdkafka's own prefetch is bounded; this bounds
/// what is moved out of it before the rebalance event behind those records is reached.
constexpr std::size_t kMaxBuffered = 200'000;

/// Commit errors that clear up by themselves when retried: the coordinator moves or loads.
bool retriable_commit_error(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:  // no answer within the deadline: the broker away or restarting
      return true;
    default:
      return false;
  }
}

/// Commit errors meaning the group moved on: only a completed rebalance makes a commit possible again.
bool rebalance_commit_error(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
         err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID;
}

bool contains(const std::vector<TopicPartition>& tps, const TopicPartition& tp) {
  return std::find(tps.begin(), tps.end(), tp) != tps.end();
}

std::string name(const TopicPartition& tp) { return tp.topic + "[" + std::to_string(tp.partition) + "]"; }

void to_record(const rd_kafka_message_t& m, Record& r) {
  r.topic = rd_kafka_topic_name(m.rkt);
  r.partition = m.partition;
  r.offset = m.offset;
  if (m.key) r.key.assign(static_cast<const char*>(m.key), m.key_len);
  if (m.payload) r.value.assign(static_cast<const char*>(m.payload), m.len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* key;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &key, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i)
      r.headers.push_back({key, value ? std::string(static_cast<const char*>(value), size) : std::string()});
  }
  rd_kafka_timestamp_type_t type;
  r.timestamp_ms = std::max<int64_t>(0, rd_kafka_message_timestamp(&m, &type));
}

/// Handles a message that carries an error instead of a record. Throws LogError on fatal errors.
void consumer_error(rd_kafka_t* rk, const rd_kafka_message_t& m) {
  if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
  if (m.err == RD_KAFKA_RESP_ERR__FATAL) {
    char errstr[512];
    rd_kafka_fatal_error(rk, errstr, sizeof errstr);
    throw LogError(std::string("kafka consumer fatal error: ") + errstr);
  }
  // Transient (broker down, topic not there yet): librdkafka keeps trying; lag shows the effect.
  spdlog::warn("kafka consumer: {}: {}", m.rkt ? rd_kafka_topic_name(m.rkt) : "-",
               rd_kafka_message_errstr(&m));
}

}  // namespace

KafkaConsumer::KafkaConsumer(const KafkaConfig& config, const std::string& group)
    : _options(config.options()) {
  const auto reset = config.setting("auto.offset.reset", "earliest");
  _reset_to_latest = reset == "latest" || reset == "end" || reset == "largest";
  auto conf = config.conf(HandleKind::kConsumer, group);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaConsumer::on_rebalance);
  rd_kafka_conf_set_opaque(conf.get(), this);
  _rk = KafkaConfig::new_handle(HandleKind::kConsumer, std::move(conf));
  // Rebalances and errors are then served by rd_kafka_consumer_poll, on the polling thread.
  rd_kafka_poll_set_consumer(_rk.get());
}

KafkaConsumer::~KafkaConsumer() {
  try {
    close();
  } catch (const std::exception& e) {
    spdlog::warn("kafka consumer: close: {}", e.what());
  }
  if (_leak) {
    (void)_rk.release();
    return;
  }
  _rk.reset();  // before the listener and buffers it might still reach
}

void KafkaConsumer::subscribe(const std::vector<std::string>& topics, RebalanceListener listener) {
  if (_closed) throw LogError("kafka consumer closed");
  _listener = std::move(listener);
  RdPtr<rd_kafka_topic_partition_list_t> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics)
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto err = rd_kafka_subscribe(_rk.get(), list.get()))
    throw LogError("kafka subscribe: " + error_text(err));
  _subscribed = true;
}

std::vector<Record> KafkaConsumer::poll(std::size_t max_records, std::chrono::milliseconds timeout) {
  if (_closed) throw LogError("kafka consumer closed");
  rethrow_pending();
  _batch.clear();
  // Records kept while commit() waited for a rebalance come first: they were fetched first.
  while (!_buffer.empty() && _batch.size() < max_records) {
    _batch.push_back(std::move(_buffer.front()));
    _buffer.pop_front();
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (_batch.size() < max_records) {
    // The timeout is for the first record; after it, take only what librdkafka has fetched already.
    const int wait = _batch.empty() ? remaining_ms(deadline) : 0;
    RdPtr<rd_kafka_message_t> m(rd_kafka_consumer_poll(_rk.get(), wait));
    rethrow_pending();
    if (!m) {
      // NULL also comes back right after a served rebalance: keep waiting while there is time.
      if (_batch.empty() && wait > 0 && remaining_ms(deadline) > 0) continue;
      break;
    }
    if (m->err) {
      consumer_error(_rk.get(), *m);
      continue;
    }
    to_record(*m, _batch.emplace_back());
  }
  for (const auto& r : _batch) _positions[{r.topic, r.partition}] = r.offset + 1;
  return std::exchange(_batch, {});
}

void KafkaConsumer::commit(const Offsets& offsets) {
  // close() revokes through the listener, which may commit what it processed: that is still allowed.
  if (_closed && !_in_rebalance) throw LogError("kafka consumer closed");
  rethrow_pending();
  std::map<TopicPartition, int64_t> owned;
  for (const auto& [tp, offset] : offsets) {
    if (contains(_assignment, tp)) {
      owned[tp] = offset;
    } else {
      spdlog::debug("kafka commit: {} is no longer assigned; its new owner commits it", name(tp));
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + _options.operation_timeout;
  if (_in_rebalance) {
    // From the listener, inside a callback: a commit() waiting outside keeps its own _committing.
    commit_in_rebalance(owned, deadline);
    return;
  }
  _committing = std::move(owned);
  _commit_error.clear();
  if (!_committing.empty() && _assigns_until_settled > 0) {
    // This member is rejoining: a commit now would queue behind its JoinGroup on the coordinator's
    // connection, arrive with the old generation, fail with ILLEGAL_GENERATION and make librdkafka (2.0)
    // drop the whole assignment. The rebalance callback commits it instead, at a safe moment.
    serve([&] { return _committing.empty(); }, deadline);
    if (!_commit_error.empty()) {
      _committing.clear();
      throw LogError(std::exchange(_commit_error, {}));
    }
    // No callback came (the count was wrong): stop waiting for it and commit directly.
    _assigns_until_settled = 0;
  }
  auto backoff = std::chrono::milliseconds(50);
  while (!_committing.empty()) {
    std::string where;
    const auto err = commit_once(_committing, deadline, where);
    if (!err) {
      _committing.clear();
      break;
    }
    if (rebalance_commit_error(err)) {
      // The next rebalance callback commits _committing (or drops what was lost) and empties it.
      spdlog::info("kafka commit: {}; committing when the rebalance completes", error_text(err));
      serve([&] { return _committing.empty(); }, deadline);
      if (!_commit_error.empty()) {
        _committing.clear();
        throw LogError(std::exchange(_commit_error, {}));
      }
      if (!_committing.empty()) {
        _committing.clear();
        throw TransientLogError("kafka commit failed: " + error_text(err) +
                                " and the rebalance did not complete in " +
                                std::to_string(_options.operation_timeout.count()) + " ms");
      }
      break;
    }
    if (!retriable_commit_error(err) || std::chrono::steady_clock::now() + backoff >= deadline) {
      _committing.clear();
      const std::string what =
          "kafka commit failed" + (where.empty() ? "" : " for " + where) + ": " + error_text(err);
      if (retriable_commit_error(err)) throw TransientLogError(what);
      throw LogError(what);
    }
    spdlog::info("kafka commit: {}, retrying", error_text(err));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  rethrow_pending();
}

rd_kafka_resp_err_t KafkaConsumer::commit_once(const std::map<TopicPartition, int64_t>& offsets,
                                               std::chrono::steady_clock::time_point deadline,
                                               std::string& where) {
  RdPtr<rd_kafka_topic_partition_list_t> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, offset] : offsets)
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
  // A private queue: the result is waited for here, the consumer queue (records, rebalances) is untouched.
  RdPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(_rk.get()));
  if (const auto err = rd_kafka_commit_queue(_rk.get(), list.get(), queue.get(), nullptr, nullptr))
    return err;
  RdPtr<rd_kafka_event_t> ev(rd_kafka_queue_poll(queue.get(), remaining_ms(deadline)));
  if (!ev) return RD_KAFKA_RESP_ERR__TIMED_OUT;
  auto err = rd_kafka_event_error(ev.get());
  if (const auto* result = rd_kafka_event_topic_partition_list(ev.get()))
    for (int i = 0; i < result->cnt; ++i)
      if (result->elems[i].err) {
        where = name({result->elems[i].topic, result->elems[i].partition});
        return result->elems[i].err;
      }
  return err;
}

void KafkaConsumer::commit_in_rebalance(const std::map<TopicPartition, int64_t>& offsets,
                                        std::chrono::steady_clock::time_point deadline) {
  // The listener's own commit, from inside the rebalance callback: the generation is the one the callback
  // belongs to and no rejoin is in flight, so it goes out now. No callback can be waited for from inside
  // one; a commit the group refuses is given up (the partitions replay from their previous commit).
  auto backoff = std::chrono::milliseconds(50);
  while (!offsets.empty()) {
    std::string where;
    const auto err = commit_once(offsets, deadline, where);
    if (!err) return;
    if (!retriable_commit_error(err) || std::chrono::steady_clock::now() + backoff >= deadline) {
      spdlog::info("kafka commit: {} during the rebalance; {} replay from the previous commit",
                   error_text(err), where.empty() ? "its partitions" : where);
      throw TransientLogError("kafka commit during a rebalance failed" +
                              (where.empty() ? "" : " for " + where) + ": " + error_text(err));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

void KafkaConsumer::commit_pending(const std::vector<TopicPartition>* owned) {
  if (_committing.empty()) return;
  std::map<TopicPartition, int64_t> offsets;
  for (const auto& [tp, offset] : _committing) {
    if (!owned || contains(*owned, tp)) {
      offsets.emplace(tp, offset);
    } else {
      spdlog::info(
          "kafka commit: {} went to another member while its commit waited; it replays from the "
          "previous commit",
          name(tp));
    }
  }
  _committing.clear();
  if (offsets.empty()) return;
  std::string where;
  const auto deadline = std::chrono::steady_clock::now() + _options.operation_timeout;
  if (const auto err = commit_once(offsets, deadline, where)) {
    if (rebalance_commit_error(err)) {
      // Another rebalance began before this one settled (a member joined or left meanwhile): the commit
      // waits for the next callback again, as it did for this one; the caller's deadline still bounds it.
      spdlog::info("kafka commit: {}; waiting for the next rebalance callback", error_text(err));
      _committing = std::move(offsets);
      return;
    }
    _commit_error = "kafka commit failed during a rebalance" + (where.empty() ? "" : " for " + where) + ": " +
                    error_text(err);
  }
}

void KafkaConsumer::serve(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline) {
  while (!done() && _buffer.size() < kMaxBuffered) {
    const int wait = std::min(remaining_ms(deadline), 100);
    if (wait <= 0) return;
    RdPtr<rd_kafka_message_t> m(rd_kafka_consumer_poll(_rk.get(), wait));
    if (!m) continue;
    if (m->err) {
      consumer_error(_rk.get(), *m);
      continue;
    }
    Record r;
    to_record(*m, r);
    _buffer.push_back(std::move(r));
  }
}

void KafkaConsumer::seek(const TopicPartition& tp, int64_t offset) {
  if (_closed) throw LogError("kafka consumer closed");
  if (!contains(_assignment, tp))
    throw LogError("kafka seek: " + name(tp) + " is not assigned to this consumer");
  auto list = to_partition_list({tp});
  list->elems[0].offset = offset;
  RdPtr<rd_kafka_error_t> error(
      rd_kafka_seek_partitions(_rk.get(), list.get(), timeout_ms(_options.operation_timeout)));
  if (error) throw LogError(std::string("kafka seek: ") + rd_kafka_error_string(error.get()));
  if (list->elems[0].err) throw LogError("kafka seek: " + error_text(list->elems[0].err));
  // Kept records of this partition are from before the seek.
  std::erase_if(_buffer, [&](const Record& r) { return r.topic == tp.topic && r.partition == tp.partition; });
  _positions[tp] = offset;
}

int64_t KafkaConsumer::lag() {
  if (_closed) return 0;
  int64_t total = 0;
  bool unknown = false;
  const int query_ms = std::min(timeout_ms(_options.operation_timeout), 2000);
  for (const auto& tp : _assignment) {
    int64_t low = RD_KAFKA_OFFSET_INVALID, high = RD_KAFKA_OFFSET_INVALID;
    rd_kafka_get_watermark_offsets(_rk.get(), tp.topic.c_str(), tp.partition, &low, &high);
    if (high < 0 &&
        rd_kafka_query_watermark_offsets(_rk.get(), tp.topic.c_str(), tp.partition, &low, &high, query_ms)) {
      unknown = true;
      continue;
    }
    auto it = _positions.find(tp);
    const int64_t position = it != _positions.end() ? it->second : start_position(tp, low, high);
    if (position < 0) {
      unknown = true;
      continue;
    }
    _positions[tp] = position;
    total += std::max<int64_t>(0, high - position);
  }
  return unknown ? std::max<int64_t>(total, 1) : total;
}

int64_t KafkaConsumer::start_position(const TopicPartition& tp, int64_t low, int64_t high) {
  auto list = to_partition_list({tp});
  const int query_ms = std::min(timeout_ms(_options.operation_timeout), 2000);
  if (rd_kafka_committed(_rk.get(), list.get(), query_ms) || list->elems[0].err) return -1;
  if (list->elems[0].offset >= 0) return list->elems[0].offset;
  if (_reset_to_latest) return high;
  if (low < 0 &&
      rd_kafka_query_watermark_offsets(_rk.get(), tp.topic.c_str(), tp.partition, &low, &high, query_ms))
    return -1;
  return low;
}

void KafkaConsumer::close() {
  if (_closed) return;
  _closed = true;
  if (_subscribed && !_ever_assigned && rd_kafka_version() < 0x020300ff) wait_for_first_assignment();
  // Serves the final revoke through on_rebalance (listener included) and leaves the group.
  if (const auto err = rd_kafka_consumer_close(_rk.get()))
    spdlog::warn("kafka consumer close: {}", error_text(err));
  _assignment.clear();
  _positions.clear();
  _buffer.clear();
  rethrow_pending();
}

void KafkaConsumer::wait_for_first_assignment() {
  // librdkafka before 2.3 aborts in rd_kafka_destroy when a cooperative-sticky member has joined the group
  // but not yet received its first assignment (confluentinc/librdkafka#4312): its assignor state is still
  // null. Serve the group protocol until that assignment arrives. Records polled meanwhile are dropped:
  // nothing of them is processed or committed, so the next owner reads them.
  const auto deadline = std::chrono::steady_clock::now() + _options.operation_timeout;
  while (!_ever_assigned && std::chrono::steady_clock::now() < deadline)
    RdPtr<rd_kafka_message_t>(rd_kafka_consumer_poll(_rk.get(), 100));
  if (!_ever_assigned) {
    spdlog::error(
        "kafka consumer: no assignment within {} ms; leaking its handle, which librdkafka {} cannot "
        "destroy safely",
        _options.operation_timeout.count(), rd_kafka_version_str());
    _leak = true;
  }
  _pending = nullptr;  // the owner is closing: listener errors from here on are moot
}

void KafkaConsumer::on_rebalance(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                                 void* opaque) {
  static_cast<KafkaConsumer*>(opaque)->rebalance(err, parts);
}

void KafkaConsumer::rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  _in_rebalance = true;
  struct Leave {
    bool& flag;
    ~Leave() { flag = false; }
  } leave{_in_rebalance};
  rd_kafka_t* rk = _rk.get();
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  auto tps = to_topic_partitions(*parts);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    _ever_assigned = true;
    // The generation is valid and no rejoin is in flight: the moment a waiting commit can go out, before
    // the fetchers start from the committed offsets. That includes partitions lost while their commit
    // waited and now assigned back to this member: committing them first keeps them from being replayed.
    std::vector<TopicPartition> owned = _assignment;
    owned.insert(owned.end(), tps.begin(), tps.end());
    commit_pending(&owned);
    if (_assigns_until_settled > 0) --_assigns_until_settled;
    std::string failure;
    if (cooperative) {
      RdPtr<rd_kafka_error_t> error(rd_kafka_incremental_assign(rk, parts));
      if (error) failure = rd_kafka_error_string(error.get());
    } else if (const auto e = rd_kafka_assign(rk, parts)) {
      failure = error_text(e);
    }
    if (!failure.empty()) {
      if (!_pending) _pending = std::make_exception_ptr(LogError("kafka assign: " + failure));
      return;
    }
    if (!cooperative) _assignment.clear();
    for (const auto& tp : tps) {
      _positions.erase(tp);
      if (!contains(_assignment, tp)) _assignment.push_back(tp);
    }
    std::sort(_assignment.begin(), _assignment.end());
    call_listener(_listener.on_assigned, tps);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    const bool lost = rd_kafka_assignment_lost(rk);
    if (lost) spdlog::warn("kafka consumer: {} partitions lost (session timed out or fenced)", tps.size());
    revoked(tps, lost);
    // librdkafka rejoins after this. A normal cooperative revoke is followed by an immediate "assign after
    // revoke" before the rejoin, then the rejoin's own assignment; a lost or eager revoke by the latter only.
    _assigns_until_settled = cooperative && !lost ? 2 : 1;
    if (cooperative) {
      RdPtr<rd_kafka_error_t> error(rd_kafka_incremental_unassign(rk, parts));
      if (error) spdlog::warn("kafka unassign: {}", rd_kafka_error_string(error.get()));
    } else {
      rd_kafka_assign(rk, nullptr);
    }
    return;
  }
  // Any other rebalance error: start again from an empty assignment, as librdkafka asks.
  spdlog::error("kafka rebalance error: {}", error_text(err));
  revoked(_assignment, true);
  _assigns_until_settled = 1;
  rd_kafka_assign(rk, nullptr);
}

void KafkaConsumer::revoked(const std::vector<TopicPartition>& tps_in, bool lost) {
  // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): a copy, since tps_in may alias _assignment
  const std::vector<TopicPartition> tps = tps_in;
  // Still a member of this generation, and the rejoin waits for the unassign: commit now. Lost partitions
  // have no valid generation any more; their commit waits for the next assignment.
  if (!lost) commit_pending(nullptr);
  // Records of these partitions not handed out yet are dropped: whoever takes the partitions over reads
  // them again from the last commit, so keeping them would process them twice and could commit early.
  auto of_revoked = [&](const Record& r) { return contains(tps, TopicPartition{r.topic, r.partition}); };
  std::erase_if(_batch, of_revoked);
  std::erase_if(_buffer, of_revoked);
  // The listener runs while the partitions are still this member's: what it commits of them (the runner
  // commits what it processed) goes out before the revoke is acknowledged, so their next owner starts there.
  // Lost partitions are no longer this member's to commit.
  if (lost) forget(tps);
  call_listener(_listener.on_revoked, tps);
  forget(tps);
}

void KafkaConsumer::forget(const std::vector<TopicPartition>& tps) {
  for (const auto& tp : tps) {
    _positions.erase(tp);
    std::erase(_assignment, tp);
  }
}

void KafkaConsumer::call_listener(const std::function<void(const std::vector<TopicPartition>&)>& fn,
                                  const std::vector<TopicPartition>& tps) {
  if (!fn || tps.empty()) return;
  try {
    fn(tps);
  } catch (...) {
    // Must not unwind through librdkafka's C frames; poll() rethrows it.
    if (!_pending) _pending = std::current_exception();
  }
}

void KafkaConsumer::rethrow_pending() {
  if (_pending) std::rethrow_exception(std::exchange(_pending, nullptr));
}

}  // namespace fleettwin::log
