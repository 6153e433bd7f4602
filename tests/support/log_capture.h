#pragma once

// What the default spdlog logger (every adapter's log) says during a test, for a test that asserts an event
// only the log tells (a commit the group refused). Header-only; link spdlog::spdlog.

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>

namespace fleettwin::testing {

/// Keeps the default logger's last 10,000 lines while it lives. spdlog does not guard a logger's sinks
/// against change while other threads log through it, so make it before the first handle that logs from a
/// thread of its own (a Kafka log) and let it go after the last. Test main thread.
class LogCapture {
 public:
  LogCapture() : _sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10'000)) {
    spdlog::default_logger()->sinks().push_back(_sink);
  }
  ~LogCapture() { std::erase(spdlog::default_logger()->sinks(), _sink); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  bool contains(const std::string& text) const {
    const auto lines = _sink->last_formatted();
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> _sink;
};

}  // namespace fleettwin::testing
