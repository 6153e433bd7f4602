#pragma once

// The end of `fleettwin bench fleet`: wait until the store has what the cars sent, then count, per (car,
// seq), what was lost or stored twice, the twins behind, the commands answered, and the publish-to-stored
// latency (from the stored time of each history row).

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "scenarios/fleet_bench.h"
#include "store/twin_store.h"

namespace fleettwin::app::bench {

/// A mongodb:// or mongodb+srv:// URI (the MongoDB store); anything else is PostgreSQL's.
inline bool is_mongo_uri(const std::string& uri) { return uri.rfind("mongodb", 0) == 0; }

class FleetCheck {
 public:
  /// The store at `store_uri` (PostgreSQL, or MongoDB / FerretDB for a mongodb:// URI), opened as the roles
  /// open it (the catalog of `config`). Exactness is counted through store::TwinStore; the latency from the
  /// history's stored times with libpq or libmongoc.
  FleetCheck(const std::string& store_uri, config::Config config);
  ~FleetCheck();
  FleetCheck(const FleetCheck&) = delete;
  FleetCheck& operator=(const FleetCheck&) = delete;
  /// Waits (calling `tick` about once a second) until the store holds at least `expected` distinct (car, seq)
  /// and has not grown for 10 s, or has not grown for 60 s (short: the check will count the loss), or
  /// `timeout_s` passed.
  void drain(int64_t expected, int64_t timeout_s, const std::function<void()>& tick);
  /// Fills the counts, the steady-state rate and latency over [steady_from_ms, steady_to_ms), and each
  /// fault's recovery. Commands count when raised at least 30 s before `cars_stopped_ms` (later ones could
  /// not be answered by cars that had stopped).
  void fill(FleetBenchResult& res, int64_t steady_from_ms, int64_t steady_to_ms, int64_t cars_stopped_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> _impl;
};

}  // namespace fleettwin::app::bench
