#include "store/postgres/pg_conn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/hex.h"
#include "store/postgres/pg_sql.h"

namespace fleettwin::store {

bool PgError::transient() const {
  if (_connection_lost) return true;
  const std::string_view s = _sqlstate;
  return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "53300" ||
         s == "40001" || s == "40P01";
}

PgParams& PgParams::add(int64_t v) {
  _values.emplace_back(std::to_string(v));
  return *this;
}

PgParams& PgParams::add(double v) {
  if (std::isnan(v)) return null();
  _values.emplace_back(sql_double(v));
  return *this;
}

PgParams& PgParams::add(bool v) {
  _values.emplace_back(v ? "t" : "f");
  return *this;
}

PgParams& PgParams::add(std::string_view v) {
  _values.emplace_back(std::string(v));
  return *this;
}

PgParams& PgParams::add_bytes(std::string_view bytes) {
  _values.emplace_back("\\x" + core::to_hex(bytes));
  return *this;
}

PgParams& PgParams::null() {
  _values.emplace_back(std::nullopt);
  return *this;
}

std::vector<const char*> PgParams::pointers() const {
  std::vector<const char*> out;
  out.reserve(_values.size());
  for (const auto& v : _values) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    PQclear(_r);
    _r = o._r;
    o._r = nullptr;
  }
  return *this;
}

PgResult::~PgResult() { PQclear(_r); }

int PgResult::rows() const { return _r != nullptr ? PQntuples(_r) : 0; }

int64_t PgResult::affected() const {
  const char* n = _r != nullptr ? PQcmdTuples(_r) : "";
  int64_t out = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), out);
  return out;
}

bool PgResult::is_null(int row, int col) const { return PQgetisnull(_r, row, col) != 0; }

std::string_view PgResult::text(int row, int col) const {
  return {PQgetvalue(_r, row, col), static_cast<size_t>(PQgetlength(_r, row, col))};
}

int64_t PgResult::i64(int row, int col) const {
  const std::string_view t = text(row, col);
  int64_t out = 0;
  std::from_chars(t.data(), t.data() + t.size(), out);
  return out;
}

double PgResult::f64(int row, int col) const {
  if (is_null(row, col)) return std::numeric_limits<double>::quiet_NaN();
  const std::string_view t = text(row, col);
  if (t == "Infinity") return std::numeric_limits<double>::infinity();
  if (t == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (t == "NaN") return std::numeric_limits<double>::quiet_NaN();
  double out = 0;
  std::from_chars(t.data(), t.data() + t.size(), out);
  return out;
}

bool PgResult::boolean(int row, int col) const { return text(row, col) == "t"; }

std::string PgResult::bytes(int row, int col) const {
  size_t n = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(_r, row, col)), &n);
  if (raw == nullptr) throw PgError("postgres: cannot read a bytea column", "", false);
  std::string out(reinterpret_cast<const char*>(raw), n);
  PQfreemem(raw);
  return out;
}

PgConnection::PgConnection(std::string uri) : _uri(std::move(uri)) { reconnect(); }

PgConnection::~PgConnection() { PQfinish(_conn); }

bool PgConnection::broken() const { return _conn == nullptr || PQstatus(_conn) != CONNECTION_OK; }

bool PgConnection::check_alive() {
  if (_conn != nullptr && PQstatus(_conn) == CONNECTION_OK) PQconsumeInput(_conn);
  return !broken();
}

void PgConnection::reconnect() {
  PQfinish(_conn);
  _conn = PQconnectdb(_uri.c_str());
  if (_conn == nullptr) throw PgError("postgres: out of memory connecting", "", true);
  if (PQstatus(_conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(_conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    std::replace(message.begin(), message.end(), '\n', ' ');  // libpq's hint lines: one line for the log
    // A malformed URI never heals by waiting; libpq says so before it tries any host.
    const bool bad_uri =
        message.find("invalid") != std::string::npos && message.find("URI") != std::string::npos;
    throw PgError("postgres: cannot connect: " + message, "", !bad_uri);
  }
  // Server notices (a connection terminated by a shutdown, ...) are not for the process's stderr: the error
  // that follows says what matters.
  PQsetNoticeProcessor(
      _conn, [](void*, const char*) {}, nullptr);
  // Quiet: the store creates what exists already (IF NOT EXISTS) on every open.
  PGresult* r = PQexec(_conn, "SET client_min_messages = warning");
  checked(r, "SET client_min_messages");
}

void PgConnection::fail(const std::string& what, pg_result* result) {
  std::string message = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(_conn);
  if (message.empty()) message = PQerrorMessage(_conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state != nullptr ? state : "";
  PQclear(result);
  throw PgError("postgres: " + what + ": " + message, std::move(sqlstate), broken());
}

PgResult PgConnection::checked(pg_result* result, const std::string& what) {
  const ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(what, result);
  return PgResult(result);
}

namespace {
/// The first words of a statement, to name it in an error without dumping generated SQL.
std::string head(const std::string& sql) { return sql.substr(0, std::min<size_t>(sql.size(), 60)); }
}  // namespace

PgResult PgConnection::exec(const std::string& sql, const PgParams& params) {
  // Without parameters, the simple protocol: it also runs several statements at once (the schema).
  if (params.size() == 0) return checked(PQexec(_conn, sql.c_str()), head(sql));
  const std::vector<const char*> values = params.pointers();
  PGresult* r = PQexecParams(_conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                             nullptr, nullptr, 0);
  return checked(r, head(sql));
}

void PgConnection::prepare(const std::string& name, const std::string& sql) {
  checked(PQprepare(_conn, name.c_str(), sql.c_str(), 0, nullptr), "prepare " + name);
}

PgResult PgConnection::exec_prepared(const std::string& name, const PgParams& params) {
  const std::vector<const char*> values = params.pointers();
  PGresult* r = PQexecPrepared(_conn, name.c_str(), static_cast<int>(values.size()), values.data(), nullptr,
                               nullptr, 0);
  return checked(r, name);
}

int64_t PgConnection::copy_in(const std::string& copy_sql, std::string_view data) {
  PGresult* r = PQexec(_conn, copy_sql.c_str());
  if (r == nullptr || PQresultStatus(r) != PGRES_COPY_IN) fail(head(copy_sql), r);
  PQclear(r);
  // libpq takes at most INT_MAX bytes a call.
  constexpr size_t kChunk = size_t{1} << 20;
  for (size_t at = 0; at < data.size(); at += kChunk) {
    const size_t n = std::min(kChunk, data.size() - at);
    if (PQputCopyData(_conn, data.data() + at, static_cast<int>(n)) != 1) fail("COPY data", nullptr);
  }
  if (PQputCopyEnd(_conn, nullptr) != 1) fail("COPY end", nullptr);
  PgResult done = checked(PQgetResult(_conn), "COPY");
  // A COPY has exactly one result; the next call must find none.
  while (PGresult* extra = PQgetResult(_conn)) PQclear(extra);
  return done.affected();
}

}  // namespace fleettwin::store
