#include "app/edge_inbox.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "core/topics.h"

namespace fleettwin::app {

namespace t = core::topics;

namespace {

/// The value of header `key` of `r`, or "".
std::string_view header_of(const log::OutRecord& r, std::string_view key) {
  for (const auto& h : r.headers)
    if (h.key == key) return h.value;
  return {};
}

/// Whether `group` has committed at least `ends` on every partition.
bool reached(const std::vector<int64_t>& committed, const std::vector<int64_t>& ends) {
  for (std::size_t p = 0; p < ends.size(); ++p)
    if (ends[p] > 0 && (p >= committed.size() || committed[p] < ends[p])) return false;
  return true;
}

/// What the inbox holds: the cars' messages as the bridge writes them.
bool held(const std::string& topic) { return topic == t::kTelemetryRaw || topic == t::kCommandAcks; }

/// The bridge's producer through the inbox: fleet.telemetry.raw and fleet.command-acks records wait in memory
/// (at most one bridge batch, mqtt.receive_maximum per connection) until flush() writes them to the inbox,
/// then to the log; their delivery reports, which release the PUBACKs, come only after both.
class InboxProducer final : public log::Producer {
 public:
  InboxProducer(EdgeInbox& inbox, std::unique_ptr<log::Producer> inner)
      : _inbox(inbox), _inner(std::move(inner)) {}

  void send(log::OutRecord record, DeliveryCallback on_delivery) override {
    if (!held(record.topic)) {
      _inner->send(std::move(record), std::move(on_delivery));
      return;
    }
    _records.push_back(std::move(record));
    _callbacks.push_back(std::move(on_delivery));
  }

  int64_t flush(std::chrono::milliseconds timeout) override {
    int64_t failed = 0;
    if (!_records.empty()) {
      int64_t last = 0;
      try {
        last = _inbox.append(_records);
      } catch (const std::exception& e) {
        // Not on disk: not acknowledged. The bridge drops the connections and the brokers send them again.
        spdlog::warn("edge inbox: {} messages not written ({}); the brokers redeliver them", _records.size(),
                     e.what());
        const log::DeliveryError error(std::string("inbox: ") + e.what());
        for (std::size_t i = 0; i < _records.size(); ++i)
          if (_callbacks[i]) _callbacks[i](_records[i], -1, &error);
        failed += static_cast<int64_t>(_records.size());
        _records.clear();
        _callbacks.clear();
      }
      for (std::size_t i = 0; i < _records.size(); ++i)
        _inner->send(std::move(_records[i]), std::move(_callbacks[i]));
      _records.clear();
      _callbacks.clear();
      failed += _inner->flush(timeout);
      if (last > 0) _inbox.in_log_up_to(last);
      return failed;
    }
    return _inner->flush(timeout);
  }

 private:
  EdgeInbox& _inbox;
  std::unique_ptr<log::Producer> _inner;
  std::vector<log::OutRecord> _records;
  std::vector<DeliveryCallback> _callbacks;
};

}  // namespace

EdgeInbox::EdgeInbox(Options options, log::Log& log, core::Metrics& metrics)
    : _options(std::move(options)),
      _log(log),
      _db(_options.path),
      _rows_gauge(
          metrics.gauge("fleettwin_edge_inbox_rows",
                        "Car messages acknowledged (PUBACK) and held in the edge inbox until stored")),
      _replayed(metrics.counter("fleettwin_edge_inbox_replayed_total",
                                "Inbox rows written into the log again after a restart")) {
  // AUTOINCREMENT: ids never go back, not even when the trimmer empties the table, so "up to id" stays a
  // watermark. WAL: the trimmer's deletes and the bridge's inserts do not block readers; synchronous FULL: a
  // committed transaction survives a power cut, not only a killed process, since a PUBACK promises the disk.
  _db.exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
      "CREATE TABLE IF NOT EXISTS inbox(id INTEGER PRIMARY KEY AUTOINCREMENT, car TEXT NOT NULL, value BLOB "
      "NOT NULL, "
      "mqtt_topic TEXT NOT NULL, received_ms TEXT NOT NULL)");
  // Inboxes written before answers went through the inbox hold telemetry only: the column's default.
  if (_db.query_int("SELECT count(*) FROM pragma_table_info('inbox') WHERE name = 'topic'") == 0)
    _db.exec(std::string("ALTER TABLE inbox ADD COLUMN topic TEXT NOT NULL DEFAULT '") + t::kTelemetryRaw +
             "'");
  _insert = store::Stmt(_db.handle(),
                        "INSERT INTO inbox(car, value, mqtt_topic, received_ms, topic) VALUES(?,?,?,?,?)");
  _rows = _db.query_int("SELECT count(*) FROM inbox");
  _trimmed = _db.query_int("SELECT coalesce(min(id), 1) - 1 FROM inbox");
  _rows_gauge.set(_rows.load());
}

EdgeInbox::~EdgeInbox() {
  {
    std::lock_guard lock(_stop_mu);
    _stop = true;
  }
  _stop_cv.notify_all();
  if (_trimmer.joinable()) _trimmer.join();
}

int64_t EdgeInbox::append(const std::vector<log::OutRecord>& records) {
  std::lock_guard lock(_mu);
  _db.exec("BEGIN");
  try {
    for (const auto& r : records) {
      store::StmtScope scope(_insert);
      // The bridge's raw records carry these two headers and no others (stages/bridge/intake.cc).
      _insert.bind(1, std::string_view(r.key))
          .bind_blob(2, r.value)
          .bind(3, header_of(r, t::kHeaderMqttTopic))
          .bind(4, header_of(r, t::kHeaderReceivedMs))
          .bind(5, std::string_view(r.topic))
          .run();
    }
    _db.exec("COMMIT");
  } catch (...) {
    _db.exec("ROLLBACK");
    throw;
  }
  _rows += static_cast<int64_t>(records.size());
  _rows_gauge.set(_rows.load());
  return _db.query_int("SELECT last_insert_rowid()");
}

int64_t EdgeInbox::replay() {
  std::lock_guard lock(_mu);
  auto producer = _log.producer();
  store::Stmt select(_db.handle(),
                     "SELECT id, car, value, mqtt_topic, received_ms, topic FROM inbox ORDER BY id");
  store::StmtScope scope(select);
  int64_t n = 0, last = 0;
  while (select.step()) {
    log::OutRecord r;
    r.topic = select.column_text(5);
    r.key = select.column_text(1);
    r.value = std::string(select.column_blob(2));
    r.headers = {{t::kHeaderMqttTopic, select.column_text(3)}, {t::kHeaderReceivedMs, select.column_text(4)}};
    producer->send(std::move(r));  // the log's backpressure bounds what waits in memory
    last = select.column_int(0);
    ++n;
  }
  if (producer->flush(std::chrono::seconds(60)) != 0) throw log::LogError("edge inbox: replay not written");
  _in_log = last;
  _replayed.add(n);
  if (n > 0) spdlog::info("edge inbox: {} acknowledged messages not yet stored put back into the log", n);
  return n;
}

std::unique_ptr<log::Producer> EdgeInbox::producer() {
  return std::make_unique<InboxProducer>(*this, _log.producer());
}

void EdgeInbox::start_trimming() {
  _trimmer = std::thread([this] { run_trimmer(); });
}

void EdgeInbox::run_trimmer() {
  std::unique_lock lock(_stop_mu);
  while (!_stop) {
    _stop_cv.wait_for(lock, _options.trim_every, [&] { return _stop; });
    if (_stop) break;
    try {
      trim_once();
    } catch (const std::exception& e) {
      spdlog::warn("edge inbox: trimming failed ({}); trying again", e.what());
    }
  }
}

bool EdgeInbox::passed(const std::vector<Watch>& watches) const {
  return std::all_of(watches.begin(), watches.end(), [&](const Watch& w) {
    return reached(_log.committed_offsets(w.group, w.topic), w.ends);
  });
}

void EdgeInbox::trim_once() {
  if (_mark.step == 0) {
    // The rows first, the offsets after: every row up to last_id is then below these ends.
    const int64_t last = _in_log.load();
    if (last <= _trimmed) return;
    _mark = {1, last, {{_options.process_group, t::kTelemetryRaw, _log.end_offsets(t::kTelemetryRaw)}}};
    const auto answers = _log.end_offsets(t::kCommandAcks);
    for (const auto& group : _options.answer_groups)
      _mark.watches.push_back({group, t::kCommandAcks, answers});
  }
  if (_mark.step == 1) {
    if (!passed(_mark.watches)) return;
    // The process stage flushed its output before it committed, and the twin stage the twins an answer
    // changed: all of it is below these ends.
    _mark = {2,
             _mark.last_id,
             {{_options.sink_group, t::kTelemetry, _log.end_offsets(t::kTelemetry)},
              {_options.sink_group, t::kTwins, _log.end_offsets(t::kTwins)}}};
  }
  if (!passed(_mark.watches)) return;
  int64_t deleted = 0;
  {
    std::lock_guard lock(_mu);
    store::Stmt del(_db.handle(), "DELETE FROM inbox WHERE id <= ?");
    store::StmtScope scope(del);
    deleted = del.bind(1, _mark.last_id).run();
  }
  _trimmed = _mark.last_id;
  _mark = {};
  _rows -= deleted;
  _rows_gauge.set(_rows.load());
}

}  // namespace fleettwin::app
