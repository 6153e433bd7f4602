// `fleettwin bench sink --postgres URI`: fleettwin's sink into the PostgreSQL store against Debezium's JDBC
// sink connector (io.debezium:debezium-connector-jdbc in Kafka Connect standalone, deploy/kafka-connect/
// jdbc-sink.properties) on the same records and the same server, alternating runs, each in a fresh database.
// Per side: rows/s, CPU seconds of the sink process (this process for fleettwin, the Connect JVM for the
// connector) and of the PostgreSQL server, rows per CPU-second. See docs/benchmarks.md.
#include <libpq-fe.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "codec/json.h"
#include "scenarios/sink_bench.h"

namespace fleettwin::cli::sink_bench {

namespace {

/// One libpq connection of the bench's main thread: database creation, the connector's progress, the checks.
class Pg {
 public:
  explicit Pg(const std::string& uri) : _conn(::PQconnectdb(uri.c_str())) {
    if (::PQstatus(_conn) != CONNECTION_OK) {
      const std::string error = ::PQerrorMessage(_conn);
      ::PQfinish(_conn);
      throw std::runtime_error("bench sink: cannot connect to " + uri + ": " + error);
    }
  }
  ~Pg() { ::PQfinish(_conn); }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  /// The first column of the first row as a number (0 without rows); throws on an error, except for a
  /// missing table (42P01) when `missing_is_zero`: the connector creates its table with its first batch.
  int64_t number(const std::string& sql, bool missing_is_zero = false) {
    PGresult* r = ::PQexec(_conn, sql.c_str());
    const auto status = ::PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      const char* state = ::PQresultErrorField(r, PG_DIAG_SQLSTATE);
      const bool missing = state != nullptr && std::string(state) == "42P01";
      const std::string error = ::PQresultErrorMessage(r);
      ::PQclear(r);
      if (missing && missing_is_zero) return 0;
      throw std::runtime_error("bench sink: " + sql.substr(0, 80) + ": " + error);
    }
    const int64_t n = ::PQntuples(r) > 0 ? std::stoll(::PQgetvalue(r, 0, 0)) : 0;
    ::PQclear(r);
    return n;
  }

 private:
  PGconn* _conn;
};

/// The parts of a postgresql://user[:password]@host[:port]/database URI that JDBC takes apart.
struct JdbcTarget {
  std::string url, user, password;
};

JdbcTarget jdbc_target(const std::string& uri) {
  const auto scheme = uri.find("://");
  if (scheme == std::string::npos ||
      (uri.substr(0, scheme) != "postgresql" && uri.substr(0, scheme) != "postgres"))
    throw std::runtime_error("--postgres: not a postgresql:// URI: " + uri);
  std::string rest = uri.substr(scheme + 3);
  JdbcTarget out;
  if (const auto at = rest.find('@'); at != std::string::npos) {
    const std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    out.user = userinfo.substr(0, colon);
    if (colon != std::string::npos) out.password = userinfo.substr(colon + 1);
  }
  out.url = "jdbc:postgresql://" + rest;
  return out;
}

/// Kafka Connect's JSON-with-schema envelope around the compact telemetry JSON: the JDBC sink needs a schema
/// with every record. One Connect field per payload key, named by the catalog's fields (the store's columns);
/// ints as int64, doubles as float64, bools as boolean, every signal and the position optional.
class SchemaEnvelope {
 public:
  explicit SchemaEnvelope(std::shared_ptr<const catalog::Catalog> catalog) {
    std::vector<std::string> names;
    std::string fields =
        R"({"field":"car","type":"string","optional":false},{"field":"ts","type":"int64","optional":false},)"
        R"({"field":"seq","type":"int64","optional":false},{"field":"lat","type":"double","optional":true},)"
        R"({"field":"lon","type":"double","optional":true})";
    for (const auto& s : catalog->signals()) {
      names.push_back(s.field);
      const char* type = s.type == core::SignalType::kInt    ? "int64"
                         : s.type == core::SignalType::kBool ? "boolean"
                                                             : "double";
      fields += R"(,{"field":")" + s.field + R"(","type":")" + type + R"(","optional":true})";
    }
    _prefix = R"({"schema":{"type":"struct","name":"fleettwin.CarTelemetry","optional":false,"fields":[)" +
              fields + R"(]},"payload":)";
    _encoder = std::make_unique<codec::TelemetryEncoder>(std::move(catalog), std::move(names));
  }
  void encode(const core::Telemetry& t, std::string& out) const {
    out += _prefix;
    _encoder->encode(t, out);
    out += '}';
  }

 private:
  std::string _prefix;
  std::unique_ptr<codec::TelemetryEncoder> _encoder;
};

/// What the records of fleet.telemetry should leave in a database: every distinct (car, seq), and the last
/// seq of each car (what the connector's progress is probed by).
struct Expected {
  std::map<std::string, std::vector<int64_t>> seqs;
  int64_t rows = 0;
  std::string cars_array, last_seqs_array;  ///< PostgreSQL array literals, car i with last seq i

  void finish() {
    cars_array = last_seqs_array = "{";
    for (auto& [car, v] : seqs) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
      rows += static_cast<int64_t>(v.size());
      if (cars_array.size() > 1) cars_array += ',', last_seqs_array += ',';
      cars_array += '"';
      for (char c : car) {
        if (c == '"' || c == '\\') cars_array += '\\';
        cars_array += c;
      }
      cars_array += '"';
      last_seqs_array += std::to_string(v.back());
    }
    cars_array += '}', last_seqs_array += '}';
  }
};

std::string quoted(const std::string& text, char quote) {
  std::string out(1, quote);
  for (char c : text) {
    if (c == quote) out += quote;
    out += c;
  }
  return out + quote;
}

/// Rows the connector stored so far, cheaply: count(*) until its first rows are in (a small table then), 1
/// from then on, and count(*) again once the last record of every car is in (the connector writes each
/// partition's records in order). Enough for time_connector, which times from the first rows to all of them.
class ConnectorProgress {
 public:
  ConnectorProgress(Pg& pg, const Expected& e)
      : _pg(pg),
        _last_in("SELECT count(*) FROM unnest(" + quoted(e.cars_array, '\'') + "::text[], " +
                 quoted(e.last_seqs_array, '\'') +
                 "::bigint[]) v(car, seq) WHERE EXISTS (SELECT 1 FROM telemetry t WHERE t.car = v.car AND "
                 "t.seq = v.seq)"),
        _cars(static_cast<int64_t>(e.seqs.size())) {}
  int64_t operator()() {
    if (!_started) {
      const int64_t n = _pg.number("SELECT count(*) FROM telemetry", true);
      _started = n > 0;
      return n;
    }
    if (_pg.number(_last_in) < _cars) return 1;
    return _pg.number("SELECT count(*) FROM telemetry");
  }

 private:
  Pg& _pg;
  std::string _last_in;
  int64_t _cars;
  bool _started = false;
};

/// The server's postmaster (the parent of this connection's backend), whose process tree's CPU time is the
/// server's; -1 when it is not on this machine.
pid_t postmaster_of(Pg& pg) { return parent_pid(static_cast<pid_t>(pg.number("SELECT pg_backend_pid()"))); }

}  // namespace

int run_bench_sink_postgres(SinkFlags flags, Config& config, log::KafkaLog& kafka, int64_t total,
                            int32_t partitions) {
  if (flags.json_topic.empty()) flags.json_topic = "fleet.telemetry.json-schema";
  const SchemaEnvelope envelope(catalog::builtin());
  Expected expected;
  std::function<void(const core::Telemetry&, std::string&)> encode;
  if (!flags.no_connector)
    encode = [&](const core::Telemetry& t, std::string& out) { envelope.encode(t, out); };
  copy_topic(kafka, flags.registry, flags.json_topic, total, partitions, encode,
             [&](const core::Telemetry& t) { expected.seqs[t.car].push_back(t.seq); });
  expected.finish();
  spdlog::info("bench sink: {} distinct (car, seq) of {} cars", expected.rows, expected.seqs.size());

  Pg admin(flags.postgres);
  const pid_t postmaster = postmaster_of(admin);
  std::function<double()> server_cpu;
  if (postmaster > 0) server_cpu = [postmaster] { return tree_cpu_seconds(postmaster); };
  const JdbcTarget jdbc = jdbc_target(flags.postgres);

  std::vector<SinkRate> ft_runs, kc_runs;
  std::vector<std::string> ft_dbs, kc_dbs;
  const std::string tag = std::to_string(::getpid());
  /// A fresh database, and the check of what a side left in it: rows and distinct (car, seq).
  auto fresh = [&](const std::string& db) { admin.number("CREATE DATABASE " + db); };
  auto check = [&](const std::string& db, const char* side) {
    Pg pg(with_database(flags.postgres, db));
    const int64_t rows = pg.number("SELECT count(*) FROM telemetry");
    const int64_t distinct = pg.number("SELECT count(*) FROM (SELECT DISTINCT car, seq FROM telemetry) d");
    std::printf("  %s in database %s: %lld rows, %lld distinct (car, seq), %lld expected\n", side, db.c_str(),
                static_cast<long long>(rows), static_cast<long long>(distinct),
                static_cast<long long>(expected.rows));
  };
  for (int run = 0; run < flags.runs; ++run) {
    const std::string ft_db = "bench_sink_ft_" + tag + "_" + std::to_string(run);
    fresh(ft_db);
    Config ft_config = config;
    ft_config.set(keys::store_postgres_uri, with_database(flags.postgres, ft_db), "bench");
    ft_runs.push_back(run_fleettwin(ft_config, flags.seconds * 1000, server_cpu));
    print_run(run, "fleettwin", ft_runs.back(), "rows");
    check(ft_db, "fleettwin");
    ft_dbs.push_back(ft_db);
    if (flags.no_connector) continue;

    const std::string kc_db = "bench_sink_kc_" + tag + "_" + std::to_string(run);
    fresh(kc_db);
    Pg progress(with_database(flags.postgres, kc_db));
    ConnectProcess connect(flags.kafka, "jdbc-sink.properties",
                           {{"TOPIC", flags.json_topic},
                            {"JDBC_URL", with_database(jdbc.url, kc_db)},
                            {"DB_USER", jdbc.user},
                            {"DB_PASSWORD", jdbc.password},
                            {"TASKS", std::to_string(flags.tasks)},
                            {"NAME", "jdbc-sink-bench-" + tag + "-" + std::to_string(run)}});
    kc_runs.push_back(time_connector(connect, ConnectorProgress(progress, expected), expected.rows,
                                     flags.seconds, std::chrono::milliseconds(100), server_cpu));
    print_run(run, "connector", kc_runs.back(), "rows");
    check(kc_db, "connector");
    kc_dbs.push_back(kc_db);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (const auto& x : v) s += (s.size() > 1 ? ", \"" : "\"") + x + "\"";
    return s + "]";
  };
  report(flags, total, ft_runs, kc_runs, "rows",
         ", \"distinct_rows\": " + std::to_string(expected.rows) +
             ", \"fleettwin_databases\": " + list(ft_dbs) + ", \"connector_databases\": " + list(kc_dbs));
  return 0;
}

}  // namespace fleettwin::cli::sink_bench
