#include "stages/uplink/spool.h"

#include <sqlite3.h>

#include <algorithm>

#include "store/sqlite/sqlite_db.h"

namespace fleettwin::stages {

using store::Stmt;
using store::StmtScope;

namespace {

// A row's cost beyond its bytes: rowid, topic, timestamp, the b-tree cell and page slack (measured as the
// file size over the bytes of 100,000 telemetry rows, rounded up).
constexpr int64_t kRowOverhead = 48;

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS records(id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
    " key BLOB NOT NULL, value BLOB NOT NULL, ts INTEGER NOT NULL);"
    // Headers are rare (the score stage's shadow marker): a row each, in a table of their own.
    "CREATE TABLE IF NOT EXISTS headers(id INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS headers_id ON headers(id);"
    "CREATE TABLE IF NOT EXISTS marks(car TEXT PRIMARY KEY, seq INTEGER NOT NULL, ts INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    // What outlives a run besides the records: the highest traffic rate measured (SpoolBudget).
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;";

}  // namespace

int64_t spooled_size(const log::OutRecord& r) {
  auto n = static_cast<int64_t>(r.key.size() + r.value.size() + r.topic.size());
  for (const auto& h : r.headers) n += static_cast<int64_t>(h.key.size() + h.value.size()) + kRowOverhead;
  return n + kRowOverhead;
}

struct Spool::Statements {
  explicit Statements(sqlite3* db)
      : insert(db, "INSERT INTO records(topic, key, value, ts) VALUES(?1, ?2, ?3, ?4)"),
        insert_header(db, "INSERT INTO headers(id, key, value) VALUES(?1, ?2, ?3)"),
        mark(db,
             "INSERT INTO marks(car, seq, ts) VALUES(?1, ?2, ?3) ON CONFLICT(car) DO UPDATE SET"
             " seq = excluded.seq, ts = excluded.ts WHERE excluded.seq > marks.seq"),
        read(db, "SELECT id, topic, key, value, ts FROM records WHERE id > ?1 ORDER BY id LIMIT ?2"),
        read_headers(db, "SELECT key, value FROM headers WHERE id = ?1"),
        sizes(db,
              "SELECT COALESCE(SUM(length(topic) + length(key) + length(value)), 0), COUNT(*) FROM records"
              " WHERE id <= ?1"),
        header_sizes(
            db, "SELECT COALESCE(SUM(length(key) + length(value)), 0), COUNT(*) FROM headers WHERE id <= ?1"),
        remove(db, "DELETE FROM records WHERE id <= ?1"),
        remove_headers(db, "DELETE FROM headers WHERE id <= ?1"),
        marks(db, "SELECT car, seq, ts FROM marks") {}
  Stmt insert, insert_header, mark, read, read_headers, sizes, header_sizes, remove, remove_headers, marks;
};

Spool::Spool(const std::string& path) : _db(std::make_unique<store::Db>(path)) {
  // WAL with synchronous=NORMAL: a committed append survives a kill of the process (the OS has the WAL);
  // only a power loss may take the last transactions back, as for the store.
  _db->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  _db->exec(kSchema);
  _st = std::make_unique<Statements>(_db->handle());
  const int64_t all = INT64_MAX;
  {
    StmtScope scope(_st->sizes);
    _st->sizes.bind(1, all);
    if (_st->sizes.step()) {
      _bytes = _st->sizes.column_int(0) + _st->sizes.column_int(1) * kRowOverhead;
      _records = _st->sizes.column_int(1);
    }
  }
  StmtScope scope(_st->header_sizes);
  _st->header_sizes.bind(1, all);
  if (_st->header_sizes.step())
    _bytes += _st->header_sizes.column_int(0) + _st->header_sizes.column_int(1) * kRowOverhead;
}

Spool::~Spool() = default;

void Spool::append(const std::vector<log::OutRecord>& records, const std::vector<CarMark>& marks) {
  std::lock_guard lock(_mu);
  _db->exec("BEGIN IMMEDIATE");
  int64_t bytes = 0;
  try {
    for (const auto& r : records) {
      {
        StmtScope scope(_st->insert);
        _st->insert.bind(1, std::string_view(r.topic))
            .bind_blob(2, r.key)
            .bind_blob(3, r.value)
            .bind(4, r.timestamp_ms);
        _st->insert.run();
      }
      const int64_t id = sqlite3_last_insert_rowid(_db->handle());
      for (const auto& h : r.headers) {
        StmtScope scope(_st->insert_header);
        _st->insert_header.bind(1, id).bind(2, std::string_view(h.key)).bind_blob(3, h.value).run();
      }
      bytes += spooled_size(r);
    }
    for (const auto& m : marks) {
      StmtScope scope(_st->mark);
      _st->mark.bind(1, std::string_view(m.car)).bind(2, m.seq).bind(3, m.ts).run();
    }
    _db->exec("COMMIT");
  } catch (...) {
    _db->exec("ROLLBACK");
    throw;
  }
  _bytes += bytes;
  _records += static_cast<int64_t>(records.size());
}

std::vector<SpooledRecord> Spool::read(int64_t after, std::size_t max) {
  std::lock_guard lock(_mu);
  std::vector<SpooledRecord> out;
  {
    StmtScope scope(_st->read);
    _st->read.bind(1, after).bind(2, static_cast<int64_t>(max));
    while (_st->read.step()) {
      SpooledRecord& s = out.emplace_back();
      s.id = _st->read.column_int(0);
      s.record.topic = _st->read.column_text(1);
      s.record.key = std::string(_st->read.column_blob(2));
      s.record.value = std::string(_st->read.column_blob(3));
      s.record.timestamp_ms = _st->read.column_int(4);
    }
  }
  if (_db->query_int("SELECT EXISTS(SELECT 1 FROM headers)") == 0) return out;
  for (auto& s : out) {
    StmtScope scope(_st->read_headers);
    _st->read_headers.bind(1, s.id);
    while (_st->read_headers.step())
      s.record.headers.push_back(
          {_st->read_headers.column_text(0), std::string(_st->read_headers.column_blob(1))});
  }
  return out;
}

void Spool::remove_through(int64_t last) {
  std::lock_guard lock(_mu);
  int64_t bytes = 0, rows = 0;
  _db->exec("BEGIN IMMEDIATE");
  try {
    {
      StmtScope scope(_st->sizes);
      _st->sizes.bind(1, last);
      if (_st->sizes.step()) {
        rows = _st->sizes.column_int(1);
        bytes = _st->sizes.column_int(0) + rows * kRowOverhead;
      }
    }
    {
      StmtScope scope(_st->header_sizes);
      _st->header_sizes.bind(1, last);
      if (_st->header_sizes.step())
        bytes += _st->header_sizes.column_int(0) + _st->header_sizes.column_int(1) * kRowOverhead;
    }
    {
      StmtScope scope(_st->remove);
      _st->remove.bind(1, last).run();
    }
    StmtScope scope(_st->remove_headers);
    _st->remove_headers.bind(1, last).run();
    _db->exec("COMMIT");
  } catch (...) {
    _db->exec("ROLLBACK");
    throw;
  }
  _bytes = std::max<int64_t>(0, _bytes - bytes);
  _records = std::max<int64_t>(0, _records - rows);
}

std::vector<CarMark> Spool::marks() {
  std::lock_guard lock(_mu);
  std::vector<CarMark> out;
  StmtScope scope(_st->marks);
  while (_st->marks.step())
    out.push_back({_st->marks.column_text(0), _st->marks.column_int(1), _st->marks.column_int(2)});
  return out;
}

double Spool::rate() {
  std::lock_guard lock(_mu);
  Stmt q(_db->handle(), "SELECT value FROM meta WHERE key = 'rate'");
  StmtScope scope(q);
  return q.step() ? q.column_double(0) : 0.0;
}

void Spool::set_rate(double bytes_per_s) {
  std::lock_guard lock(_mu);
  Stmt q(_db->handle(),
         "INSERT INTO meta(key, value) VALUES('rate', ?1) ON CONFLICT(key) DO UPDATE SET value = "
         "excluded.value");
  StmtScope scope(q);
  q.bind(1, bytes_per_s).run();
}

int64_t Spool::bytes() const {
  std::lock_guard lock(_mu);
  return _bytes;
}

int64_t Spool::records() const {
  std::lock_guard lock(_mu);
  return _records;
}

}  // namespace fleettwin::stages
