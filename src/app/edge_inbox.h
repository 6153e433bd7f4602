#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "log/log.h"
#include "store/sqlite/sqlite_db.h"

namespace fleettwin::app {

/// The durable point of an edge site (`up --mqtt` on the embedded log, mqtt.durable_ack; docs/architecture.md
/// "Edge sites: what a PUBACK means"): an SQLite table in data_dir that holds every car message the bridge
/// acknowledged, telemetry and answers to commands alike, until the site has it for good. The bridge writes
/// through producer(): at each flush its batch of fleet.telemetry.raw and fleet.command-acks records is
/// inserted in one synced transaction (group commit) before the in-memory log gets them and before their
/// delivery is reported, so a PUBACK follows the disk. A trimmer thread deletes rows once they are stored end
/// to end, found by watermarks on the log: first the process stage has committed past the raw offsets the
/// rows went to and every reader of answers (twin, sink, uplink) past the answers' offsets, then the sink
/// past the fleet.telemetry and fleet.twins offsets those produced. After a crash replay() puts what is left
/// back into the log; the stores are idempotent by (car, seq), an answer applied twice changes nothing. The
/// bridge's thread writes, the trimmer thread deletes, the main thread replays before both: one mutex around
/// the connection.
class EdgeInbox {
 public:
  struct Options {
    std::string path;  ///< the SQLite file (created)
    std::string process_group = "fleettwin.process";
    std::string sink_group = "fleettwin.sink";
    /// Every group that reads fleet.command-acks (the twin, the sink, and the uplink when there is one): an
    /// answer's row stays until all of them have passed it.
    std::vector<std::string> answer_groups = {"fleettwin.twin", "fleettwin.sink"};
    std::chrono::milliseconds trim_every{250};
  };
  EdgeInbox(Options options, log::Log& log, core::Metrics& metrics);
  ~EdgeInbox();
  EdgeInbox(const EdgeInbox&) = delete;
  EdgeInbox& operator=(const EdgeInbox&) = delete;

  /// Writes every row still held (acknowledged to cars, perhaps not stored) into the log again, oldest first;
  /// how many. Call before the bridge starts.
  int64_t replay();
  /// A producer for the bridge: fleet.telemetry.raw records go through the inbox, others straight to the log.
  /// Used by one thread; the inbox must outlive it.
  std::unique_ptr<log::Producer> producer();
  /// Starts the trimmer thread (stopped by the destructor).
  void start_trimming();
  /// Rows held now.
  int64_t rows() const { return _rows.load(); }

  /// Inserts `records` in one transaction (synced) and returns the id of the last; throws SqliteError.
  int64_t append(const std::vector<log::OutRecord>& records);
  /// Every row up to `id` is in the log (or failed, and its message was not acknowledged).
  void in_log_up_to(int64_t id) { _in_log.store(id); }
  /// One step of the trimmer; public for tests.
  void trim_once();

 private:
  /// Where a group must have committed on a topic before the rows of a mark may go.
  struct Watch {
    std::string group;
    std::string topic;
    std::vector<int64_t> ends;
  };
  /// A batch of rows on its way through the pipeline: every row up to `last_id` is in the log at offsets
  /// below the ends the step waits on.
  struct Mark {
    int step = 0;  // 0: none, 1: waiting for the process stage and the answers' readers, 2: for the sink
    int64_t last_id = 0;
    std::vector<Watch> watches;
  };
  bool passed(const std::vector<Watch>& watches) const;
  void run_trimmer();

  Options _options;
  log::Log& _log;
  mutable std::mutex _mu;  // the connection and its statements
  store::Db _db;
  store::Stmt _insert;
  std::atomic<int64_t> _in_log{0};
  std::atomic<int64_t> _rows{0};
  int64_t _trimmed = 0;  // trimmer thread
  Mark _mark;            // trimmer thread
  core::Gauge& _rows_gauge;
  core::Counter& _replayed;
  std::mutex _stop_mu;
  std::condition_variable _stop_cv;
  bool _stop = false;
  std::thread _trimmer;
};

}  // namespace fleettwin::app
