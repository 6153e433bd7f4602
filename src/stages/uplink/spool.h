#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "log/log.h"

namespace fleettwin::store {
class Db;
}

namespace fleettwin::stages {

/// One record waiting in the spool: what the uplink sends to central, in `id` order.
struct SpooledRecord {
  int64_t id = 0;
  log::OutRecord record;  ///< topic as on the edge (fleet.telemetry, ...), key = car
};

/// The newest telemetry seq of a car the spool has taken (kept across restarts): where the uplink's catch-up
/// from the store starts after a kill (docs/architecture.md "Edge sites and the central cluster").
struct CarMark {
  std::string car;
  int64_t seq = 0;
  int64_t ts = 0;
};

/// The uplink's store-and-forward spool: the records a site must still send to central, in a SQLite file in
/// the data dir (a well-kept library rather than a hand-written file format: crash-safe appends, deletes of
/// what central acknowledged, the file's free pages reused). Rows are appended in one transaction per batch
/// together with the per-car telemetry marks, read oldest first and deleted once central acknowledged them,
/// so a kill at any moment loses nothing appended and resends at most one batch. Thread-safe: the capture
/// stage appends on its thread while the sender reads and deletes on its own (one connection, a mutex).
class Spool {
 public:
  /// Opens or creates the spool at `path`. Throws std::runtime_error (store::SqliteError) on failure.
  explicit Spool(const std::string& path);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  /// Appends `records` and raises the marks of `marks` (the telemetry among them) in one transaction.
  void append(const std::vector<log::OutRecord>& records, const std::vector<CarMark>& marks);
  /// Up to `max` records, oldest first, starting after id `after`.
  std::vector<SpooledRecord> read(int64_t after, std::size_t max);
  /// Deletes every record up to and including id `last` (central acknowledged them).
  void remove_through(int64_t last);
  /// Every car's mark.
  std::vector<CarMark> marks();

  /// The site's traffic rate (bytes/s) the uplink budget was last sized for (SpoolBudget::rate), 0 if none.
  double rate();
  void set_rate(double bytes_per_s);

  /// Bytes the waiting records take (keys, values, headers and a per-row overhead), and their count.
  int64_t bytes() const;
  int64_t records() const;

 private:
  mutable std::mutex _mu;
  std::unique_ptr<store::Db> _db;
  struct Statements;
  std::unique_ptr<Statements> _st;
  int64_t _bytes = 0;
  int64_t _records = 0;
};

/// What one spooled row counts against uplink.disk_budget: its bytes plus SQLite's per-row overhead.
int64_t spooled_size(const log::OutRecord& r);

}  // namespace fleettwin::stages
