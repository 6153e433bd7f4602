#include "stages/twin/twin_resume.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <unordered_map>

#include "codec/json.h"
#include "core/clock.h"
#include "core/topics.h"

namespace fleettwin::stages {

std::vector<TwinSnapshot> read_twin_changelog(log::Log& log, const catalog::Catalog& catalog,
                                              const std::set<int32_t>* partitions,
                                              std::chrono::milliseconds timeout) {
  static std::atomic<int> reads{0};
  auto consumer = log.consumer("fleettwin.twin.bootstrap." + std::to_string(::getpid()) + "." +
                               std::to_string(core::wall_clock_ms()) + "." + std::to_string(++reads));
  consumer->subscribe({core::topics::kTwins});
  std::unordered_map<std::string, TwinSnapshot> latest;
  TwinSnapshot s;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool assigned = false;
  while (std::chrono::steady_clock::now() < deadline) {
    auto batch = consumer->poll(10000, std::chrono::milliseconds(500));
    assigned = assigned || !consumer->assignment().empty();
    for (const auto& r : batch) {
      if (partitions && !partitions->contains(r.partition)) continue;
      if (!codec::twin_from_json(r.value, s.twin, &error, catalog) ||
          !codec::twin_pending_from_json(r.value, s.pending, &error)) {
        spdlog::warn("twin: unreadable {} record {}/{}: {}", core::topics::kTwins, r.partition, r.offset,
                     error);
        continue;
      }
      s.partition = r.partition;
      auto [it, inserted] = latest.try_emplace(s.twin.id, s);
      const auto& kept = it->second.twin;
      if (!inserted &&
          std::pair(s.twin.reported.seq, s.twin.version) >= std::pair(kept.reported.seq, kept.version))
        it->second = s;
    }
    if (assigned && batch.empty() && consumer->lag() == 0) break;
  }
  consumer->close();
  std::vector<TwinSnapshot> out;
  out.reserve(latest.size());
  for (auto& [id, snapshot] : latest) out.push_back(std::move(snapshot));
  return out;
}

std::vector<TwinSnapshot> twins_from_store(store::TwinStore& store) {
  std::unordered_map<std::string, TwinSnapshot> by_car;
  store::TwinQuery q;
  q.limit = 10000;
  for (auto page = store.list_twins(q); !page.empty(); page = store.list_twins(q)) {
    q.after_id = page.back().id;
    for (auto& twin : page) by_car[twin.id].twin = std::move(twin);
  }
  auto snapshot = [&](const std::string& car) -> TwinSnapshot& {
    auto& s = by_car[car];
    if (s.twin.id.empty()) s.twin.id = car;
    return s;
  };
  constexpr int64_t kRead = 100'000;
  const auto commands = store.commands("", kRead);  // newest first: kept oldest first, as the stage does
  for (auto c = commands.rbegin(); c != commands.rend(); ++c) {
    std::map<std::string, std::string> settings;
    if (c->status != "pending" || !codec::command_settings(*c, settings, nullptr)) continue;
    auto& pending = snapshot(c->car).pending.commands;
    if (pending.size() == core::TwinPending::kMaxCommands) pending.erase(pending.begin());
    pending.push_back({c->id, std::move(settings), c->expires});
  }
  const auto alerts = store.alerts("", kRead);
  for (auto a = alerts.rbegin(); a != alerts.rend(); ++a) {
    if (!a->raised) continue;
    auto& open = snapshot(a->car).pending.open_alerts;
    if (open.size() == core::TwinPending::kMaxAlerts) open.erase(open.begin());
    open.push_back(a->id);
  }
  std::vector<TwinSnapshot> out;
  out.reserve(by_car.size());
  for (auto& [car, s] : by_car) out.push_back(std::move(s));
  return out;
}

}  // namespace fleettwin::stages
