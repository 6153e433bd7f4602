#include "scenarios/fleet_check.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "app/store_factory.h"

namespace fleettwin::app::bench {

namespace keys = config::keys;

namespace {

// The PostgreSQL store's history table and the columns the latency query reads (src/store/postgres/): ts is
// the car's publish time, stored_ms the server's clock when the row was inserted.
constexpr const char* kHistoryTable = "telemetry";

/// Publish-to-stored latency of the messages the cars sent in one second.
struct Second {
  int64_t count = 0;
  double max_ms = 0;
};

}  // namespace

struct FleetCheck::Impl {
  PGconn* pg = nullptr;
  std::unique_ptr<store::TwinStore> store;

  ~Impl() {
    if (pg) PQfinish(pg);
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
  std::map<int64_t, Second> seconds(int64_t from_ms) {
    const std::string sql = "SELECT ts / 1000, count(*), max(stored_ms - ts) FROM " +
                            std::string(kHistoryTable) + " WHERE ts >= " + std::to_string(from_ms) +
                            " GROUP BY 1 ORDER BY 1";
    PGresult* r = PQexec(pg, sql.c_str());
    std::map<int64_t, Second> out;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
      for (int i = 0; i < PQntuples(r); ++i)
        out[std::atoll(PQgetvalue(r, i, 0))] = {std::atoll(PQgetvalue(r, i, 1)),
                                                std::atof(PQgetvalue(r, i, 2))};
    else
      spdlog::error("bench fleet: {}: {}", sql, PQresultErrorMessage(r));
    PQclear(r);
    return out;
  }
};

FleetCheck::FleetCheck(const std::string& postgres_uri, config::Config config)
    : _impl(std::make_unique<Impl>()) {
  config.set(keys::store_postgres_uri, postgres_uri, "bench");
  _impl->store = store_opener(config)();
  _impl->pg = PQconnectdb(postgres_uri.c_str());
  if (PQstatus(_impl->pg) != CONNECTION_OK)
    throw std::runtime_error("bench fleet: cannot connect to " + postgres_uri + ": " +
                             PQerrorMessage(_impl->pg));
}

FleetCheck::~FleetCheck() = default;

void FleetCheck::drain(int64_t expected, int64_t timeout_s, const std::function<void()>& tick) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  int64_t last = -1;
  auto last_change = Clock::now();
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    tick();
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
  if (res.lost > 0) {
    // Where the missing messages are: gaps below a car's highest stored seq (the rest were at the tail).
    PGresult* r =
        PQexec(_impl->pg,
               "SELECT car, prev, seq FROM (SELECT car, seq, lag(seq) OVER (PARTITION BY car ORDER BY seq) "
               "AS prev FROM telemetry) g WHERE seq > coalesce(prev, 0) + 1 LIMIT 10");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); ++i)
      spdlog::error("bench fleet: lost: car {} has seq {} after {}", PQgetvalue(r, i, 0), PQgetvalue(r, i, 2),
                    PQgetisnull(r, i, 1) ? "nothing" : PQgetvalue(r, i, 1));
    PQclear(r);
  }
  count_commands(*_impl->store, res, cars_stopped_ms);
  const std::string window = " FROM " + std::string(kHistoryTable) +
                             " WHERE ts >= " + std::to_string(steady_from_ms) + " AND ts < " +
                             std::to_string(steady_to_ms);
  const auto q = _impl->row(
      "SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY stored_ms - ts), "
      "percentile_disc(0.99) WITHIN GROUP (ORDER BY stored_ms - ts)" +
      window);
  if (q.size() == 3) {
    res.msgs_per_s = q[0] / std::max(1.0, static_cast<double>(steady_to_ms - steady_from_ms) / 1000.0);
    res.p50_latency_ms = q[1];
    res.p99_latency_ms = q[2];
  }
  if (res.faults.empty()) return;
  // Steady level: twice the steady p99, at least 1 s. A fault has recovered at the first second after it
  // ended from which five seconds of messages in a row were stored within that level.
  const double level = std::max(1000.0, 2 * res.p99_latency_ms);
  const auto secs = _impl->seconds(res.faults.front().start_ms);
  for (auto& f : res.faults) {
    const int64_t end_s = f.end_ms / 1000;
    for (auto it = secs.lower_bound(f.start_ms / 1000); it != secs.end(); ++it) {
      f.max_latency_ms = std::max(f.max_latency_ms, it->second.max_ms);
      if (it->first < end_s) continue;
      bool settled = true;
      auto jt = it;
      for (int k = 0; k < 5 && settled; ++k, ++jt) settled = jt != secs.end() && jt->second.max_ms <= level;
      if (settled) {
        f.recovery_s = static_cast<double>(it->first * 1000 - f.end_ms) / 1000.0;
        if (f.recovery_s < 0) f.recovery_s = 0;
        break;
      }
    }
  }
}

}  // namespace fleettwin::app::bench
