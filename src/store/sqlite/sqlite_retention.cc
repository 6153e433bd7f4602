// SqliteStore::enforce_retention: deletes history older than a cutoff in small statements.

#include <cstdint>
#include <vector>

#include "store/sqlite/sqlite_store.h"

namespace fleettwin::store {
namespace {

// Each DELETE is its own autocommit transaction of at most this many rows, so the write lock it takes is
// held for milliseconds and a sink on another connection waits at most that long (its busy_timeout covers
// it). The generation's rows are adjacent in the (gen, car, ts, seq) key, so a statement touches the pages
// of one generation only; no index on ts is needed: telemetry_gens gives each generation's ts range, and
// the scan for ts < cutoff stays inside one generation (~20,000 rows).
constexpr int64_t kRowsPerStatement = 5000;
// Bound of one call; RetentionResult::more asks for the next one.
constexpr int64_t kRowsPerCall = 50000;

}  // namespace

RetentionResult SqliteStore::enforce_retention(int64_t cutoff_ms) {
  RetentionResult result{.store = "sqlite"};
  std::vector<int64_t> gens;
  {
    Stmt s(_db.handle(), "SELECT gen FROM telemetry_gens WHERE rows > 0 AND min_ts < ?1 ORDER BY gen");
    s.bind(1, cutoff_ms);
    while (s.step()) gens.push_back(s.column_int(0));
  }
  Stmt del(_db.handle(),
           "DELETE FROM telemetry WHERE (gen, car, ts, seq) IN"
           " (SELECT gen, car, ts, seq FROM telemetry WHERE gen = ?1 AND ts < ?2 LIMIT ?3)");
  // The open (last) generation keeps its telemetry_gens row even when emptied: write() appends to it.
  Stmt recount(_db.handle(),
               "UPDATE telemetry_gens SET (rows, min_ts, max_ts) = (SELECT count(*),"
               " coalesce(min(ts), 9223372036854775807), coalesce(max(ts), -9223372036854775807 - 1)"
               " FROM telemetry WHERE gen = ?1) WHERE gen = ?1");
  Stmt drop_empty(_db.handle(),
                  "DELETE FROM telemetry_gens WHERE gen = ?1 AND rows = 0"
                  " AND gen < (SELECT max(gen) FROM telemetry_gens)");
  // Stmt::run() leaves the statement to its caller to reset before the next use.
  const auto run = [](Stmt& s) {
    const StmtScope scope(s);
    return s.run();
  };
  for (const int64_t gen : gens) {
    int64_t n = 0;
    do {
      if (result.removed >= kRowsPerCall) {
        result.more = true;
        break;
      }
      n = run(del.bind(1, gen).bind(2, cutoff_ms).bind(3, kRowsPerStatement));
      result.removed += n;
    } while (n == kRowsPerStatement);
    run(recount.bind(1, gen));
    run(drop_empty.bind(1, gen));
    if (result.more) break;
  }
  Stmt oldest(_db.handle(), "SELECT min(min_ts) FROM telemetry_gens WHERE rows > 0");
  if (oldest.step() && !oldest.column_is_null(0)) result.oldest_ms = oldest.column_int(0);
  return result;
}

}  // namespace fleettwin::store
