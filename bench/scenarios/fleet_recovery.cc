#include "scenarios/fleet_recovery.h"

#include <algorithm>

namespace fleettwin::app::bench {

namespace {

/// What the cars published and what the store took in over the seconds [from_s, from_s + kKeepUpSeconds).
struct WindowFlow {
  int64_t published = 0, stored = 0;
};

WindowFlow window_flow(const std::map<int64_t, FlowSecond>& flow, int64_t from_s) {
  WindowFlow w;
  for (auto it = flow.lower_bound(from_s); it != flow.end() && it->first < from_s + kKeepUpSeconds; ++it) {
    w.published += it->second.published;
    w.stored += it->second.stored;
  }
  return w;
}

}  // namespace

Recovery measure_recovery(const std::map<int64_t, FlowSecond>& flow, int64_t start_ms, int64_t end_ms,
                          int64_t until_ms) {
  Recovery r;
  // (1) The backlog: everything published up to the end of the fault's last second, the messages it held
  // back included, is stored.
  const int64_t end_s = end_ms / 1000;
  int64_t drained_ms = end_ms;
  for (auto it = flow.begin(); it != flow.end() && it->first <= end_s; ++it)
    drained_ms = std::max(drained_ms, it->second.last_stored_ms);
  // (2) From the first whole second after that (so the drain's own burst of writes does not count), the first
  // window of seconds in which the store keeps up with the cars. Recovered at the drain when that is the
  // first window, else when the window starts.
  const int64_t first_s = drained_ms / 1000 + 1;
  for (int64_t s = first_s; (s + kKeepUpSeconds) * 1000 <= until_ms; ++s) {
    const WindowFlow w = window_flow(flow, s);
    if (w.published == 0 || static_cast<double>(w.stored) < kKeepUpShare * static_cast<double>(w.published))
      continue;
    const int64_t recovered_ms = s == first_s ? drained_ms : s * 1000;
    r.recovery_s = static_cast<double>(recovered_ms - end_ms) / 1000.0;
    for (auto it = flow.lower_bound(start_ms / 1000); it != flow.end() && it->first <= recovered_ms / 1000;
         ++it)
      r.max_latency_ms = std::max(r.max_latency_ms, it->second.max_latency_ms);
    return r;
  }
  // Never recovered: the worst latency from the fault's start on, as far as the run goes.
  for (auto it = flow.lower_bound(start_ms / 1000); it != flow.end(); ++it)
    r.max_latency_ms = std::max(r.max_latency_ms, it->second.max_latency_ms);
  return r;
}

}  // namespace fleettwin::app::bench
