#pragma once

// Small helpers shared by the log adapter tests (memory, Kafka mock cluster, real Kafka). Header-only; used
// on the test's own thread.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "log/log.h"

namespace fleettwin::testing {

inline log::OutRecord rec(const std::string& topic, const std::string& key, const std::string& value) {
  log::OutRecord r;
  r.topic = topic;
  r.key = key;
  r.value = value;
  return r;
}

/// Sends `n` records keyed "k" with the values "0", "1", ... to `topic`; returns what `flush(timeout)`
/// returns (how many are still unacknowledged).
inline int64_t send_numbered(log::Producer& p, const std::string& topic, int n,
                             std::chrono::milliseconds timeout) {
  for (int i = 0; i < n; ++i) p.send(rec(topic, "k", std::to_string(i)));
  return p.flush(timeout);
}

/// A consumer of `group`, subscribed to `topics`.
inline std::unique_ptr<log::Consumer> subscribed(log::Log& log, const std::string& group,
                                                 const std::vector<std::string>& topics) {
  auto c = log.consumer(group);
  c->subscribe(topics);
  return c;
}

/// Polls until `expect` records arrived or `budget` ran out.
inline std::vector<log::Record> drain(log::Consumer& c, std::size_t expect,
                                      std::chrono::milliseconds budget = std::chrono::seconds(30)) {
  std::vector<log::Record> all;
  const auto deadline = std::chrono::steady_clock::now() + budget;
  while (all.size() < expect && std::chrono::steady_clock::now() < deadline) {
    auto batch = c.poll(1000, std::chrono::milliseconds(100));
    all.insert(all.end(), batch.begin(), batch.end());
  }
  return all;
}

/// Calls `step` until `done` or `budget` ran out; returns `done()`.
inline bool until(const std::function<bool()>& done, const std::function<void()>& step,
                  std::chrono::milliseconds budget = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  while (!done() && std::chrono::steady_clock::now() < deadline) step();
  return done();
}

}  // namespace fleettwin::testing
