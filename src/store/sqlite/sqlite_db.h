#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace fleettwin::store {

/// A failed SQLite call: the message carries SQLite's error text and the statement it came from, so a sink
/// log line is enough to diagnose it. Thrown by every sqlite/ class.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& what) : std::runtime_error(what), _code(code) {}
  /// The (extended) SQLite result code, e.g. SQLITE_BUSY.
  int code() const { return _code; }

 private:
  int _code;
};

/// One prepared statement, reset after each use so its read lock and bindings never outlive the call.
/// Owned by a Db's user and used only on that Db's thread.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  explicit operator bool() const { return _stmt != nullptr; }

  // Parameters are 1-based, as in SQL text (?1, ?2, ...).
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, double v);
  Stmt& bind(int i, std::string_view v);       ///< TEXT; the bytes must outlive the next step()
  Stmt& bind_blob(int i, std::string_view v);  ///< BLOB; the bytes must outlive the next step()
  Stmt& bind(int i, std::optional<double> v);  ///< nullopt binds NULL
  Stmt& bind_null(int i);

  /// Runs one step: true when a row is available, false when done. Throws on error.
  bool step();
  /// Steps a statement that returns no rows; returns sqlite3_changes(): rows it inserted/updated/deleted.
  int64_t run();
  /// Clears the cursor (releasing read locks) and bindings; safe to call at any time.
  void reset();

  // Columns are 0-based, as in the SQLite API.
  int64_t column_int(int i) const;
  double column_double(int i) const;
  /// A REAL column that may hold NULL because SQLite stores a bound NaN as NULL: NULL reads as NaN.
  double column_real(int i) const;
  bool column_is_null(int i) const;
  std::string column_text(int i) const;
  std::string_view column_blob(int i) const;  ///< valid until the next step() or reset()

 private:
  void check(int rc) const;
  sqlite3_stmt* _stmt = nullptr;
};

/// Resets a statement when the scope ends, even by exception, so no cursor is left open.
class StmtScope {
 public:
  explicit StmtScope(Stmt& s) : _s(s) {}
  ~StmtScope() { _s.reset(); }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  Stmt& _s;
};

/// An open SQLite connection. SQLite connections must not be shared between threads without locking, and
/// the store wants none, so a Db is opened in "multi-thread" mode (no connection mutex) and used by the
/// one thread that owns it.
class Db {
 public:
  explicit Db(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* handle() const { return _db; }
  /// Runs one or more statements that return no rows (DDL, PRAGMA, BEGIN/COMMIT).
  void exec(std::string_view sql);
  /// Runs a statement that returns one integer (e.g. a PRAGMA query).
  int64_t query_int(std::string_view sql);
  /// sqlite3_changes64() of the last statement.
  int64_t changes() const;

 private:
  sqlite3* _db = nullptr;
};

/// Turns a failed result code into a SqliteError with the connection's message and `context`.
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, std::string_view context);

}  // namespace fleettwin::store
