#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "core/metrics.h"
#include "log/log.h"
#include "stages/uplink/uplink_capture.h"

namespace fleettwin::stages {

/// Central commands to the cars of one site, on its own thread: consumes central `fleet.commands` in group
/// `fleettwin-downlink-<site>` and writes the commands for cars this site has seen (UplinkStatus::seen) to
/// the site's own fleet.commands, where the bridge delivers them (or expires them: their expiry travels with
/// them). Central offsets are committed only after the site's log took the batch; while central is
/// unreachable nothing is committed, and the commands wait on central until the site is back. `central` gives
/// its consumers a group.instance.id (app/uplink.cc): a new consumer, after a failed commit or in a restarted
/// edge, takes the old one's place at once instead of waiting out its session.
class Downlink {
 public:
  Downlink(log::Log& central, log::Log& site_log, std::string site, std::shared_ptr<UplinkStatus> status,
           core::Metrics& metrics);
  ~Downlink();
  Downlink(const Downlink&) = delete;
  Downlink& operator=(const Downlink&) = delete;

  void start();
  void stop();
  /// The consumer group on central of `site`'s downlink, also its static member's group.instance.id.
  static std::string group_of(const std::string& site) { return "fleettwin-downlink-" + site; }

 private:
  void run();
  log::Log& _central;
  log::Log& _site_log;
  std::string _site;
  std::shared_ptr<UplinkStatus> _status;
  std::atomic<bool> _stop{false};
  std::thread _thread;
  core::Counter& _forwarded;
  core::Counter& _elsewhere;
};

}  // namespace fleettwin::stages
