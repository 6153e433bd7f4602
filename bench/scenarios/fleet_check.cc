#include "scenarios/fleet_check.h"

#include <libpq-fe.h>
#include <mongoc/mongoc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "app/store_factory.h"
#include "scenarios/fleet_recovery.h"

namespace fleettwin::app::bench {

namespace keys = config::keys;

namespace {

// The history table / collection and the fields the latency reads: ts is the car's publish time; stored_ms
// (PostgreSQL) the server's clock when the row was inserted, stored (MongoDB, a date) the sink's clock when
// it sent the batch (src/store/mongo/mongo_documents.h: an insert cannot take the server's clock).
constexpr const char* kHistoryTable = "telemetry";

/// Count and publish-to-stored percentiles of the messages sent in a window.
struct Window {
  int64_t count = 0;
  double p50_ms = 0, p99_ms = 0;
};

/// One telemetry document of the MongoDB store, as the check reads it.
struct MongoRow {
  std::string car;
  int64_t seq = 0, ts = 0, stored = 0;
};

int64_t bson_int(const bson_t* d, const char* key) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, d, key)) return 0;
  if (BSON_ITER_HOLDS_DATE_TIME(&it)) return bson_iter_date_time(&it);
  return BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
}

/// percentile_disc(p) of sorted values: the first whose cumulative share reaches p.
double percentile_disc(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<std::size_t>(i, 1, sorted.size()) - 1]);
}

}  // namespace

struct FleetCheck::Impl {
  PGconn* pg = nullptr;
  mongoc_client_t* mongo = nullptr;
  std::string mongo_db;
  std::unique_ptr<store::TwinStore> store;
  std::vector<MongoRow> mongo_rows;  ///< every telemetry document, read once after the drain
  bool scanned = false;

  ~Impl() {
    if (pg) PQfinish(pg);
    if (mongo) mongoc_client_destroy(mongo);
  }
  /// One row of numbers from `sql`; std::runtime_error with the server's message.
  std::vector<double> row(const std::string& sql) {
    PGresult* r = PQexec(pg, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      const std::string e = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("bench fleet: " + sql + ": " + e);
    }
    std::vector<double> out;
    for (int c = 0; PQntuples(r) > 0 && c < PQnfields(r); ++c)
      out.push_back(PQgetisnull(r, 0, c) ? 0.0 : std::atof(PQgetvalue(r, 0, c)));
    PQclear(r);
    return out;
  }
  /// MongoDB: car, seq, ts and stored of every telemetry document, in one pass (on FerretDB every query of
  /// telemetry is a scan of the collection anyway: docs/operations.md), once the sinks have drained.
  const std::vector<MongoRow>& scan() {
    if (scanned) return mongo_rows;
    mongoc_collection_t* coll = mongoc_client_get_collection(mongo, mongo_db.c_str(), kHistoryTable);
    bson_t filter = BSON_INITIALIZER;
    bson_t* opts = BCON_NEW("projection", "{", "car", BCON_INT32(1), "seq", BCON_INT32(1), "ts",
                            BCON_INT32(1), "stored", BCON_INT32(1), "}");
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, &filter, opts, nullptr);
    const bson_t* d = nullptr;
    while (mongoc_cursor_next(cursor, &d)) {
      MongoRow r;
      bson_iter_t it;
      if (bson_iter_init_find(&it, d, "car") && BSON_ITER_HOLDS_UTF8(&it))
        r.car = bson_iter_utf8(&it, nullptr);
      r.seq = bson_int(d, "seq");
      r.ts = bson_int(d, "ts");
      r.stored = bson_int(d, "stored");
      mongo_rows.push_back(std::move(r));
    }
    bson_error_t error;
    const bool failed = mongoc_cursor_error(cursor, &error);
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    if (failed) throw std::runtime_error(std::string("bench fleet: reading telemetry: ") + error.message);
    scanned = true;
    return mongo_rows;
  }
  /// Per second from `from_ms` on: the messages the cars published in it (their count, worst latency, when
  /// the last was stored) and the messages the store took in it, of those published from `from_ms` on.
  std::map<int64_t, FlowSecond> flow(int64_t from_ms) {
    std::map<int64_t, FlowSecond> out;
    if (mongo) {
      for (const auto& r : scan()) {
        if (r.ts < from_ms) continue;
        auto& s = out[r.ts / 1000];
        ++s.published;
        s.max_latency_ms = std::max(s.max_latency_ms, static_cast<double>(r.stored - r.ts));
        s.last_stored_ms = std::max(s.last_stored_ms, r.stored);
        ++out[r.stored / 1000].stored;
      }
      return out;
    }
    const std::string from = std::to_string(from_ms);
    const std::string table(kHistoryTable);
    rows("SELECT ts / 1000, count(*), max(stored_ms - ts), max(stored_ms) FROM " + table +
             " WHERE ts >= " + from + " GROUP BY 1",
         [&](PGresult* r, int i) {
           auto& s = out[std::atoll(PQgetvalue(r, i, 0))];
           s.published = std::atoll(PQgetvalue(r, i, 1));
           s.max_latency_ms = std::atof(PQgetvalue(r, i, 2));
           s.last_stored_ms = std::atoll(PQgetvalue(r, i, 3));
         });
    rows("SELECT stored_ms / 1000, count(*) FROM " + table + " WHERE ts >= " + from + " GROUP BY 1",
         [&](PGresult* r, int i) {
           out[std::atoll(PQgetvalue(r, i, 0))].stored = std::atoll(PQgetvalue(r, i, 1));
         });
    return out;
  }
  /// Calls `each` with every row of `sql`'s result; logs the server's message when it fails.
  void rows(const std::string& sql, const std::function<void(PGresult*, int)>& each) {
    PGresult* r = PQexec(pg, sql.c_str());
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
      for (int i = 0; i < PQntuples(r); ++i) each(r, i);
    else
      spdlog::error("bench fleet: {}: {}", sql, PQresultErrorMessage(r));
    PQclear(r);
  }
  /// The messages sent in [from_ms, to_ms): how many, and their publish-to-stored p50 and p99.
  Window window(int64_t from_ms, int64_t to_ms) {
    Window w;
    if (mongo) {
      std::vector<int64_t> lat;
      for (const auto& r : scan())
        if (r.ts >= from_ms && r.ts < to_ms) lat.push_back(r.stored - r.ts);
      std::sort(lat.begin(), lat.end());
      w.count = static_cast<int64_t>(lat.size());
      w.p50_ms = percentile_disc(lat, 0.5);
      w.p99_ms = percentile_disc(lat, 0.99);
      return w;
    }
    const auto q =
        row("SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY stored_ms - ts), "
            "percentile_disc(0.99) WITHIN GROUP (ORDER BY stored_ms - ts) FROM " +
            std::string(kHistoryTable) + " WHERE ts >= " + std::to_string(from_ms) + " AND ts < " +
            std::to_string(to_ms));
    if (q.size() == 3) w = {static_cast<int64_t>(q[0]), q[1], q[2]};
    return w;
  }
  /// Logs up to ten gaps below a car's highest stored seq (where lost messages are).
  void log_gaps() {
    if (mongo) {
      std::map<std::string, std::vector<int64_t>> by_car;
      for (const auto& r : scan()) by_car[r.car].push_back(r.seq);
      int shown = 0;
      for (auto& [car, seqs] : by_car) {
        std::sort(seqs.begin(), seqs.end());
        for (std::size_t i = 0; i < seqs.size() && shown < 10; ++i) {
          const int64_t prev = i ? seqs[i - 1] : 0;
          if (seqs[i] <= prev + 1) continue;
          spdlog::error("bench fleet: lost: car {} has seq {} after {}", car, seqs[i],
                        i ? std::to_string(prev) : "nothing");
          ++shown;
        }
      }
      return;
    }
    PGresult* r =
        PQexec(pg,
               "SELECT car, prev, seq FROM (SELECT car, seq, lag(seq) OVER (PARTITION BY car ORDER BY seq) "
               "AS prev FROM telemetry) g WHERE seq > coalesce(prev, 0) + 1 LIMIT 10");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); ++i)
      spdlog::error("bench fleet: lost: car {} has seq {} after {}", PQgetvalue(r, i, 0), PQgetvalue(r, i, 2),
                    PQgetisnull(r, i, 1) ? "nothing" : PQgetvalue(r, i, 1));
    PQclear(r);
  }
};

FleetCheck::FleetCheck(const std::string& store_uri, config::Config config)
    : _impl(std::make_unique<Impl>()) {
  if (is_mongo_uri(store_uri)) {
    config.set(keys::store_mongo_uri, store_uri, "bench");
    _impl->store = store_opener(config)();
    bson_error_t error;
    mongoc_uri_t* uri = mongoc_uri_new_with_error(store_uri.c_str(), &error);
    if (!uri) throw std::runtime_error("bench fleet: " + store_uri + ": " + error.message);
    const char* db = mongoc_uri_get_database(uri);
    _impl->mongo_db = db && *db ? db : "fleettwin";  // as MongoPool: the URI's path, default fleettwin
    _impl->mongo = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    if (!_impl->mongo) throw std::runtime_error("bench fleet: cannot connect to " + store_uri);
    return;
  }
  config.set(keys::store_postgres_uri, store_uri, "bench");
  _impl->store = store_opener(config)();
  _impl->pg = PQconnectdb(store_uri.c_str());
  if (PQstatus(_impl->pg) != CONNECTION_OK)
    throw std::runtime_error("bench fleet: cannot connect to " + store_uri + ": " +
                             PQerrorMessage(_impl->pg));
}

FleetCheck::~FleetCheck() = default;

void FleetCheck::drain(int64_t expected, int64_t timeout_s, const std::function<void()>& tick) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  int64_t last = -1;
  auto last_change = Clock::now();
  // On FerretDB a count is a scan of the whole collection that holds back the WAL checkpoint of the sinks'
  // writes while it reads (docs/operations.md): count every 5 s there, not every second.
  const int poll_s = _impl->mongo ? 5 : 1;
  while (Clock::now() < deadline) {
    for (int i = 0; i < poll_s; ++i) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      tick();
    }
    const int64_t n = _impl->store->history_stats().distinct;
    if (n != last) {
      last = n;
      last_change = Clock::now();
    }
    std::fprintf(stderr, "bench fleet: draining: %lld of %lld stored\n", (long long)n, (long long)expected);
    const auto still = Clock::now() - last_change;
    if ((n >= expected && still >= std::chrono::seconds(10)) || still >= std::chrono::seconds(60)) return;
  }
  spdlog::warn("bench fleet: the store did not settle within {} s", timeout_s);
}

namespace {

void count_exactness(store::TwinStore& store, FleetBenchResult& res) {
  const auto stats = store.history_stats();
  res.stored = stats.distinct;
  res.duplicates = stats.rows - stats.distinct;
  std::unordered_map<std::string, int64_t> last_seq;
  int64_t seq_sum = 0;
  for (const auto& [car, seq] : store.max_seq_per_car()) {
    last_seq[car] = seq;
    seq_sum += seq;
  }
  // Every car counts from seq 1 and sends in order, so a stored seq N means 1..N were all sent: a gap below a
  // car's highest stored seq is a lost message, and so is an acknowledged one beyond what is stored.
  res.lost = std::max<int64_t>(0, std::max(seq_sum, res.published) - stats.distinct);
  store::TwinQuery q;
  q.limit = 1000;
  for (;;) {
    const auto page = store.list_twins(q);
    for (const auto& twin : page) {
      const auto it = last_seq.find(twin.id);
      if (it != last_seq.end() && twin.reported.seq != it->second) ++res.twins_behind;
    }
    if (page.size() < static_cast<std::size_t>(q.limit)) break;
    q.after_id = page.back().id;
  }
}

void count_commands(store::TwinStore& store, FleetBenchResult& res, int64_t cars_stopped_ms) {
  for (const auto& c : store.commands("", 10'000'000)) {
    if (c.name != "schedule_service" || c.created > cars_stopped_ms - 30'000) continue;
    ++res.commands_sent;
    if (c.status == "acked" || c.status == "failed") ++res.commands_answered;
  }
}

}  // namespace

void FleetCheck::fill(FleetBenchResult& res, int64_t steady_from_ms, int64_t steady_to_ms,
                      int64_t cars_stopped_ms) {
  count_exactness(*_impl->store, res);
  if (res.lost > 0) _impl->log_gaps();
  count_commands(*_impl->store, res, cars_stopped_ms);
  const Window w = _impl->window(steady_from_ms, steady_to_ms);
  res.msgs_per_s = static_cast<double>(w.count) /
                   std::max(1.0, static_cast<double>(steady_to_ms - steady_from_ms) / 1000.0);
  res.p50_latency_ms = w.p50_ms;
  res.p99_latency_ms = w.p99_ms;
  if (res.faults.empty()) return;
  // Recovery is when a fault's backlog is drained and the store keeps up with the cars again
  // (fleet_recovery.h), not a latency bound: on a loaded machine every latency is higher than in the steady
  // minute, and the pipeline still recovers.
  const auto flow = _impl->flow(std::min(steady_from_ms, res.faults.front().start_ms));
  for (auto& f : res.faults) {
    const Recovery r = measure_recovery(flow, f.start_ms, f.end_ms, cars_stopped_ms);
    f.recovery_s = r.recovery_s;
    f.max_latency_ms = r.max_latency_ms;
  }
}

}  // namespace fleettwin::app::bench
