#include "store/sqlite/sqlite_db.h"

#include <sqlite3.h>

#include <limits>
#include <utility>

namespace fleettwin::store {

void throw_sqlite(sqlite3* db, int rc, std::string_view context) {
  std::string what = "sqlite: ";
  what += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  what += " (";
  what += context;
  what += ')';
  throw SqliteError(rc, what);
}

Stmt::Stmt(sqlite3* db, std::string_view sql) {
  // PERSISTENT: these statements live as long as the store, SQLite then allocates them outside its
  // lookaside pool.
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &_stmt,
                              nullptr);
  if (rc != SQLITE_OK) throw_sqlite(db, rc, sql);
}

Stmt::~Stmt() { sqlite3_finalize(_stmt); }

Stmt::Stmt(Stmt&& other) noexcept : _stmt(std::exchange(other._stmt, nullptr)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(_stmt);
    _stmt = std::exchange(other._stmt, nullptr);
  }
  return *this;
}

void Stmt::check(int rc) const {
  if (rc != SQLITE_OK) throw_sqlite(sqlite3_db_handle(_stmt), rc, sqlite3_sql(_stmt));
}

Stmt& Stmt::bind(int i, int64_t v) {
  check(sqlite3_bind_int64(_stmt, i, v));
  return *this;
}

Stmt& Stmt::bind(int i, double v) {
  check(sqlite3_bind_double(_stmt, i, v));
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view v) {
  check(sqlite3_bind_text(_stmt, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  return *this;
}

Stmt& Stmt::bind_blob(int i, std::string_view v) {
  // A zero-length blob must still be a BLOB, not NULL: SQLite binds NULL for a null pointer.
  static const char kEmpty = 0;
  check(
      sqlite3_bind_blob(_stmt, i, v.empty() ? &kEmpty : v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  return *this;
}

Stmt& Stmt::bind(int i, std::optional<double> v) {
  if (v) return bind(i, *v);
  return bind_null(i);
}

Stmt& Stmt::bind_null(int i) {
  check(sqlite3_bind_null(_stmt, i));
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(_stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_sqlite(sqlite3_db_handle(_stmt), rc, sqlite3_sql(_stmt));
}

int64_t Stmt::run() {
  step();
  return sqlite3_changes64(sqlite3_db_handle(_stmt));
}

void Stmt::reset() {
  if (_stmt == nullptr) return;
  // The result code repeats the last step's error, already reported by step(); nothing to do with it here.
  sqlite3_reset(_stmt);
  sqlite3_clear_bindings(_stmt);
}

int64_t Stmt::column_int(int i) const { return sqlite3_column_int64(_stmt, i); }

double Stmt::column_double(int i) const { return sqlite3_column_double(_stmt, i); }

double Stmt::column_real(int i) const {
  return column_is_null(i) ? std::numeric_limits<double>::quiet_NaN() : column_double(i);
}

bool Stmt::column_is_null(int i) const { return sqlite3_column_type(_stmt, i) == SQLITE_NULL; }

std::string Stmt::column_text(int i) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(_stmt, i));
  return p != nullptr ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(_stmt, i))) : std::string();
}

std::string_view Stmt::column_blob(int i) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(_stmt, i));
  return p != nullptr ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(_stmt, i)))
                      : std::string_view();
}

Db::Db(const std::string& path) {
  int rc = sqlite3_open_v2(path.c_str(), &_db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    // sqlite3_open_v2 returns a handle even on failure, holding the message; it must still be closed.
    std::string message = _db != nullptr ? sqlite3_errmsg(_db) : sqlite3_errstr(rc);
    sqlite3_close(_db);
    _db = nullptr;
    throw SqliteError(rc, "sqlite: " + message + " (open " + path + ")");
  }
  sqlite3_extended_result_codes(_db, 1);
}

Db::~Db() {
  // close_v2: a statement still alive (a bug) turns the handle into a zombie instead of leaking it.
  sqlite3_close_v2(_db);
}

void Db::exec(std::string_view sql) {
  std::string text(sql);  // sqlite3_exec wants a NUL-terminated string
  int rc = sqlite3_exec(_db, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) throw_sqlite(_db, rc, sql);
}

int64_t Db::query_int(std::string_view sql) {
  Stmt s(_db, sql);
  return s.step() ? s.column_int(0) : 0;
}

int64_t Db::changes() const { return sqlite3_changes64(_db); }

}  // namespace fleettwin::store
