#pragma once

// When a fault of `fleettwin bench fleet --faults` has recovered, from what the store holds: per wall-clock
// second, what the cars published in it and what the store took in it. Pure: no I/O, so the rule is tested on
// its own (tests/unit/bench/fleet_recovery_test.cc).

#include <cstdint>
#include <map>

namespace fleettwin::app::bench {

/// One wall-clock second of the run, from the history rows of the messages published from some moment on.
/// Plain value.
struct FlowSecond {
  int64_t published = 0;       ///< rows whose ts (the car's publish time) falls in this second
  int64_t stored = 0;          ///< rows whose stored time falls in this second
  int64_t last_stored_ms = 0;  ///< when the last of this second's published messages was stored
  double max_latency_ms = 0;   ///< worst publish-to-stored latency of this second's published messages
};

/// Share of what the cars published over the check window that the store must have taken in the same
/// window: a pipeline keeping up takes in what comes in (give or take a batch), one that is stuck or slower
/// than the cars does not.
constexpr double kKeepUpShare = 0.8;
/// Seconds the pipeline must keep up for, once the fault's backlog is drained.
constexpr int64_t kKeepUpSeconds = 5;

/// A fault's recovery. recovery_s: -1 when it never recovered while the cars were publishing.
struct Recovery {
  double recovery_s = -1;
  double max_latency_ms = 0;  ///< worst latency of a message published from the fault's start until recovery
};

/// A fault that ran over [start_ms, end_ms] has recovered at the first moment T from its end at which
/// (1) its backlog is drained: every message published up to the end of the second in which the fault ended
/// is stored, and (2) the pipeline stays caught up: over the kKeepUpSeconds whole seconds after T, the store
/// took in at least kKeepUpShare of what the cars published in them (T is the drain itself when the pipeline
/// keeps up right after it, else the start of the first window in which it does). Neither part is a latency
/// bound, so a machine loaded by other work (every latency higher, the pipeline still keeping up) does not
/// read as a fault that never recovers; a pipeline that stays stuck, or stores slower than the cars publish,
/// never recovers by this rule. The check window must end before `until_ms` (when the cars stopped): after it
/// nothing comes in to keep up with. `flow` is keyed by second (ms / 1000).
Recovery measure_recovery(const std::map<int64_t, FlowSecond>& flow, int64_t start_ms, int64_t end_ms,
                          int64_t until_ms);

}  // namespace fleettwin::app::bench
