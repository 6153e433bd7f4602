#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "api/context.h"

namespace fleettwin::api {

/// The API's background thread: once a second it samples the pipeline's counters (ThroughputLog and the
/// `throughput` event), publishes the twins that changed on fleet.twins (`twins`) and the alerts the store
/// has newly raised (`alert`); in between it reads fleet.twins, fleet.models (ModelCatalog) and the DLQ
/// topics (DlqRecent, GET /api/v1/dlq). start()/request_stop()/join() from the server's owner thread;
/// everything else on its own thread.
class LiveFeed {
 public:
  explicit LiveFeed(ApiContext& ctx) : _ctx(ctx) {}
  ~LiveFeed();  ///< stops and joins
  LiveFeed(const LiveFeed&) = delete;
  LiveFeed& operator=(const LiveFeed&) = delete;

  void start();
  /// Tells the thread to finish; it returns within one log poll (100 ms).
  void request_stop();
  void join();

 private:
  void run();
  /// Opens the consumer of fleet.twins and fleet.models; null (no twin events) without a log or on error.
  std::unique_ptr<log::Consumer> open_consumer();
  /// Reads one batch: model records to the catalog, twin changes into _changed while a client listens.
  void read_log(std::unique_ptr<log::Consumer>& consumer);
  /// The once-a-second work: a throughput sample, the changed twins, new alerts.
  void tick(double seconds);
  void publish_twins();
  void poll_alerts();

  ApiContext& _ctx;
  std::thread _thread;
  std::atomic<bool> _stopping{false};
  std::mutex _stop_mu;
  std::condition_variable _stop_cv;
  // Owned by the feed's thread:
  ThroughputSample _prev;
  // Car -> its newest twin document this second, kept raw: only the (at most 1000) published ones are
  // parsed, and nothing is kept while no live client listens.
  std::unordered_map<std::string, std::string> _changed;
  std::optional<std::set<std::string>> _seen_alerts;  // alert ids already seen; nullopt before the first poll
};

}  // namespace fleettwin::api
