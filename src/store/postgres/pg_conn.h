#pragma once

// A thin RAII layer over libpq for the PostgreSQL store: one connection, results, text parameters, COPY.
// Private to store/postgres/: nothing above the store sees libpq.

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

struct pg_conn;
struct pg_result;

namespace fleettwin::store {

/// A failed libpq call or statement. `sqlstate` is the server's error code ("" when the client failed, e.g.
/// no connection); `connection_lost` is true when the connection is gone (the server stopped, restarted or
/// could not be reached), which is what makes the failure transient.
class PgError : public std::runtime_error {
 public:
  PgError(const std::string& what, std::string sqlstate, bool connection_lost)
      : std::runtime_error(what), _sqlstate(std::move(sqlstate)), _connection_lost(connection_lost) {}
  const std::string& sqlstate() const { return _sqlstate; }
  bool connection_lost() const { return _connection_lost; }
  /// Connection lost, or a server state that passes by waiting: class 08 (connection exception), 57P01-03
  /// (shutdown, crash, starting up), 53300 (too many connections), 40001/40P01 (serialization, deadlock).
  bool transient() const;

 private:
  std::string _sqlstate;
  bool _connection_lost;
};

/// Text parameters of one statement ($1, $2, ...), in libpq's form: a value's text, or NULL. Doubles are
/// written in their shortest exact form; NaN is NULL (absent), as in the other stores.
class PgParams {
 public:
  PgParams& add(int64_t v);
  PgParams& add(double v);
  PgParams& add(bool v);
  PgParams& add(std::string_view v);
  PgParams& add(const char* v) { return add(std::string_view(v)); }
  PgParams& add(std::optional<double> v) { return v ? add(*v) : null(); }
  /// add() of each value, in order (strings as text).
  template <typename... V>
  PgParams& add_all(const V&... values) {
    (add(values), ...);
    return *this;
  }
  /// A bytea value, in the hex input form.
  PgParams& add_bytes(std::string_view bytes);
  PgParams& null();
  std::size_t size() const { return _values.size(); }
  /// The pointers libpq takes; valid until the next add.
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> _values;
};

/// One statement's result. Columns are read as text (libpq's default), converted here. Move-only.
class PgResult {
 public:
  explicit PgResult(pg_result* r = nullptr) : _r(r) {}
  PgResult(PgResult&& o) noexcept : _r(o._r) { o._r = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  int rows() const;
  /// Rows the command touched (INSERT/UPDATE/DELETE), from the command tag.
  int64_t affected() const;
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;
  std::string str(int row, int col) const { return std::string(text(row, col)); }
  int64_t i64(int row, int col) const;  ///< NULL reads 0
  double f64(int row, int col) const;   ///< NULL reads NaN (absent)
  bool boolean(int row, int col) const;
  std::string bytes(int row, int col) const;  ///< a bytea column, unescaped

 private:
  pg_result* _r;
};

/// One connection to the server. Used by one thread at a time (libpq connections are not shared).
class PgConnection {
 public:
  /// Connects to `uri` (postgresql://... or a libpq keyword string). Throws PgError (connection_lost) when
  /// the server cannot be reached.
  explicit PgConnection(std::string uri);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Runs one statement (without parameters: one or more); throws PgError unless it succeeded.
  PgResult exec(const std::string& sql, const PgParams& params = {});
  /// Prepares `sql` under `name` on this connection (again after every reconnect: see reconnect()).
  void prepare(const std::string& name, const std::string& sql);
  PgResult exec_prepared(const std::string& name, const PgParams& params);
  /// Runs `COPY ... FROM STDIN` with `data` (text format) as its input; returns the rows copied.
  int64_t copy_in(const std::string& copy_sql, std::string_view data);

  /// True when the connection is gone (the last call failed with connection_lost).
  bool broken() const;
  /// Reads whatever the server sent meanwhile, without waiting: a server that shut down or restarted since
  /// the last call has closed the socket, and the connection is then broken(). Returns !broken().
  bool check_alive();
  /// Drops the connection and opens a new one; throws PgError as the constructor does.
  void reconnect();

 private:
  [[noreturn]] void fail(const std::string& what, pg_result* result);
  PgResult checked(pg_result* result, const std::string& what);

  std::string _uri;
  pg_conn* _conn = nullptr;
};

/// Runs `body` between `begin` ("BEGIN", "BEGIN ISOLATION LEVEL ...") and COMMIT, and returns what it
/// returns. If anything throws, the transaction is rolled back (unless the connection is gone, which ends it
/// on the server anyway) and the first error goes on.
template <typename F>
auto in_transaction(PgConnection& conn, const std::string& begin, F&& body) -> decltype(body()) {
  conn.exec(begin);
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      conn.exec("COMMIT");
    } else {
      auto out = body();
      conn.exec("COMMIT");
      return out;
    }
  } catch (...) {
    if (!conn.broken()) {
      try {
        conn.exec("ROLLBACK");
      } catch (...) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
      }
    }
    throw;
  }
}

}  // namespace fleettwin::store
