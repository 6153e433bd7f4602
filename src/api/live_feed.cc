#include "api/live_feed.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>

#include "api/http_helpers.h"
#include "codec/json.h"
#include "codec/json_writer.h"
#include "core/clock.h"
#include "core/topics.h"

namespace fleettwin::api {

namespace {

using SteadyClock = std::chrono::steady_clock;

/// A twin as the `twins` event carries it: {id, status, score, online, lat, lon, seq, delta (a count)}.
std::string twin_event_json(const core::Twin& t) {
  std::string out;
  codec::JsonWriter(out)
      .begin_object()
      .key("id")
      .string(t.id)
      .key("status")
      .string(core::to_string(t.health.status))
      .key("score")
      .number(t.health.score)
      .key("online")
      .boolean(t.online)
      .key("lat")
      .number(t.reported.lat)
      .key("lon")
      .number(t.reported.lon)
      .key("seq")
      .integer(t.reported.seq)
      .key("delta")
      .integer(static_cast<int64_t>(t.delta().size()))
      .end_object();
  return out;
}

}  // namespace

LiveFeed::~LiveFeed() {
  request_stop();
  join();
}

void LiveFeed::start() {
  _thread = std::thread([this] { run(); });
}

void LiveFeed::request_stop() {
  {
    std::lock_guard lock(_stop_mu);
    _stopping = true;
  }
  _stop_cv.notify_all();
}

void LiveFeed::join() {
  if (_thread.joinable()) _thread.join();
}

std::unique_ptr<log::Consumer> LiveFeed::open_consumer() {
  if (!_ctx.options.log) return nullptr;
  try {
    const std::string group =
        "fleettwin.api." + std::to_string(::getpid()) + "." + std::to_string(core::wall_clock_ms());
    std::vector<std::string> topics{core::topics::kTwins, core::topics::kModels};
    for (const char* dlq : core::topics::kDlqTopics) {
      // Looking at dead letters is never worth holding their writers back: the stage writing one waits
      // for the log before it commits (Log::allow_lag).
      _ctx.options.log->allow_lag(group, dlq);
      topics.emplace_back(dlq);
    }
    auto consumer = _ctx.options.log->consumer(group);
    consumer->subscribe(topics);
    return consumer;
  } catch (const std::exception& e) {
    spdlog::warn("api: no twin-change events ({})", e.what());
    return nullptr;
  }
}

void LiveFeed::run() {
  auto consumer = open_consumer();
  auto last = SteadyClock::now();
  auto next_tick = last;
  while (!_stopping.load()) {
    if (consumer) {
      read_log(consumer);
    } else {
      std::unique_lock lock(_stop_mu);
      _stop_cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return _stopping.load(); });
    }
    if (SteadyClock::now() < next_tick) continue;
    next_tick += std::chrono::seconds(1);
    const auto now = SteadyClock::now();
    tick(std::chrono::duration<double>(now - last).count());
    last = now;
  }
  if (consumer) consumer->close();
}

void LiveFeed::read_log(std::unique_ptr<log::Consumer>& consumer) {
  try {
    // Reading and committing promptly matters: the embedded log holds its producers back for a group
    // that falls behind, and this group must never slow the pipeline.
    auto batch = consumer->poll(5000, std::chrono::milliseconds(100));
    const bool listened = _ctx.hub.subscribers() > 0;
    for (const auto& r : batch) {
      if (r.topic == core::topics::kModels) {
        _ctx.models.keep(r.key, r.value);
      } else if (r.topic != core::topics::kTwins) {
        _ctx.dlq.keep(r);
      } else if (listened && (_changed.size() < 1000 || _changed.count(r.key))) {
        _changed[r.key] = r.value;
      }
    }
    if (!batch.empty()) consumer->commit(log::next_offsets(batch));
  } catch (const std::exception& e) {
    spdlog::warn("api: twin changes: {}", e.what());
    consumer.reset();
  }
}

void LiveFeed::tick(double seconds) {
  const auto sample = take_sample(_ctx.options.metrics, _ctx.options.lag_stages, _prev, seconds);
  _prev = sample;
  _ctx.throughput.add(sample);
  _ctx.hub.publish("throughput", sample_json(sample));
  publish_twins();
  poll_alerts();
}

void LiveFeed::publish_twins() {
  if (_changed.empty()) return;
  std::string out = "{\"items\":[";
  bool first = true;
  core::Twin t;
  for (const auto& [car, doc] : _changed) {
    if (!codec::twin_from_json(doc, t, nullptr, _ctx.catalog())) continue;
    out += (first ? "" : ",") + twin_event_json(t);
    first = false;
  }
  _ctx.hub.publish("twins", out + "]}");
  _changed.clear();
}

void LiveFeed::poll_alerts() {
  if (!_ctx.stores.configured()) return;
  try {
    auto s = _ctx.stores.acquire();
    std::set<std::string> now;
    for (const auto& a : s->alerts("", 200)) {
      now.insert(a.id);
      if (_seen_alerts && !_seen_alerts->count(a.id)) _ctx.hub.publish("alert", codec::alert_to_json(a));
    }
    _seen_alerts = std::move(now);
  } catch (const std::exception& e) {
    spdlog::debug("api: alert poll: {}", e.what());
  }
}

}  // namespace fleettwin::api
