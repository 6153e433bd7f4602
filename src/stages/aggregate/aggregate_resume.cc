#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "aggregate/state_bytes.h"
#include "core/clock.h"
#include "core/topics.h"
#include "stages/aggregate/aggregate_resume.h"

namespace fleettwin::stages {

std::vector<log::Record> read_compacted_latest(log::Log& log, const std::string& topic,
                                               const std::set<int32_t>& partitions,
                                               std::chrono::milliseconds timeout) {
  static std::atomic<int> reads{0};
  auto consumer = log.consumer("fleettwin.aggregate.bootstrap." + std::to_string(::getpid()) + "." +
                               std::to_string(core::wall_clock_ms()) + "." + std::to_string(++reads));
  consumer->subscribe({topic});
  // A key always goes to one partition, in order: the last record read of a key is its latest.
  std::unordered_map<std::string, log::Record> latest;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool assigned = false;
  bool complete = false;
  while (std::chrono::steady_clock::now() < deadline) {
    auto batch = consumer->poll(10000, std::chrono::milliseconds(500));
    assigned = assigned || !consumer->assignment().empty();
    for (auto& r : batch) {
      if (!partitions.contains(r.partition) || r.key.empty()) continue;
      latest[r.key] = std::move(r);
    }
    if (assigned && batch.empty() && consumer->lag() == 0) {
      complete = true;
      break;
    }
  }
  consumer->close();
  if (!complete)
    spdlog::warn("aggregate: {} not read to its end within {} s; what was not read starts empty", topic,
                 timeout.count() / 1000);
  std::vector<log::Record> out;
  out.reserve(latest.size());
  for (auto& [key, r] : latest) out.push_back(std::move(r));
  return out;
}

std::vector<AggregateSnapshot> read_aggregate_changelog(log::Log& log, const std::set<int32_t>& partitions,
                                                        std::chrono::milliseconds timeout,
                                                        const std::string& topic) {
  std::vector<AggregateSnapshot> out;
  for (auto& r : read_compacted_latest(log, topic, partitions, timeout))
    out.push_back({std::move(r.key), std::move(r.value)});
  return out;
}

std::vector<AggregateSnapshot> take_aggregate_snapshot(const std::string& path) {
  std::vector<AggregateSnapshot> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  std::ostringstream text;
  text << in.rdbuf();
  in.close();
  std::error_code ec;
  std::filesystem::remove(path, ec);
  const std::string bytes = text.str();
  aggregate::StateReader r(bytes);
  uint64_t n = 0;
  // Each car takes at least two bytes, which bounds the count by the file.
  bool ok = r.count(n, bytes.size() / 2, "more cars than bytes");
  std::size_t at = 0;
  auto field = [&](std::string& s) {
    uint64_t len = 0;
    if (!r.count(len, bytes.size(), "length past the end")) return false;
    at = bytes.size() - r.remaining();
    if (len > r.remaining()) return r.fail("length past the end");
    s.assign(bytes, at, len);
    return r.pass(len);
  };
  for (uint64_t i = 0; ok && i < n; ++i) {
    AggregateSnapshot s;
    ok = field(s.car) && field(s.state);
    if (ok) out.push_back(std::move(s));
  }
  if (!ok) spdlog::warn("aggregate: {} is damaged ({}); {} cars read from it", path, r.error(), out.size());
  return out;
}

}  // namespace fleettwin::stages
