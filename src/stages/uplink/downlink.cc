#include "stages/uplink/downlink.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/topics.h"

namespace fleettwin::stages {

Downlink::Downlink(log::Log& central, log::Log& site_log, std::string site,
                   std::shared_ptr<UplinkStatus> status, core::Metrics& metrics)
    : _central(central),
      _site_log(site_log),
      _site(std::move(site)),
      _status(std::move(status)),
      _forwarded(metrics.counter("fleettwin_downlink_forwarded_total",
                                 "Central commands written to this site's fleet.commands")),
      _elsewhere(metrics.counter("fleettwin_downlink_elsewhere_total",
                                 "Central commands for cars this site has not seen (left to other sites)")) {}

Downlink::~Downlink() { stop(); }

void Downlink::start() {
  _thread = std::thread([this] { run(); });
}

void Downlink::stop() {
  _stop = true;
  if (_thread.joinable()) _thread.join();
}

void Downlink::run() {
  std::unique_ptr<log::Consumer> consumer;
  auto out = _site_log.producer();
  while (!_stop) {
    try {
      if (!consumer) {
        consumer = _central.consumer(group_of(_site));
        consumer->subscribe({core::topics::kCommands});
      }
      auto batch = consumer->poll(500, std::chrono::milliseconds(200));
      if (batch.empty()) continue;
      int64_t forwarded = 0;
      for (const auto& r : batch) {
        if (!_status->seen(r.key)) {
          _elsewhere.add();
          continue;
        }
        out->send(log::OutRecord{core::topics::kCommands, r.key, r.value, r.headers});
        ++forwarded;
      }
      if (out->flush(std::chrono::seconds(30)) != 0)
        throw log::LogError("the site's log did not take commands");
      consumer->commit(log::next_offsets(batch));
      _forwarded.add(forwarded);
    } catch (const std::exception& e) {
      // Central unreachable (a commit that failed): what was not committed comes again, and a command the
      // site already forwarded is the same command id again, which the car answers once more.
      spdlog::warn("downlink: {}; retrying", e.what());
      consumer.reset();
      for (int i = 0; i < 50 && !_stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (consumer) consumer->close();
}

}  // namespace fleettwin::stages
