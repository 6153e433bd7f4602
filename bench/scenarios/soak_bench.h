#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "config/config.h"

namespace fleettwin::app::bench {

/// The flags of `fleettwin bench soak` beyond the configuration keys it sets (cars, interval, duration,
/// retention). Plain value.
struct SoakFlags {
  int64_t sample_s = 10;  ///< wall seconds between samples
  std::string json;       ///< write the samples and the verdict here
  bool keep = false;      ///< keep the data dir
};

/// `fleettwin bench soak`: `up --fast` (embedded, SQLite) for `sim.duration` of simulated time, sampling the
/// stored history (rows and event-time span), the data dir's size and this process's resident memory every
/// `sample_s`; prints a line per sample and, from two retention periods on, the largest sample over the
/// smallest of each. Exit code 1 when the run was not clean. Runs on the calling thread (the pipeline on a
/// thread of its own).
int run_soak_bench(const SoakFlags& f, config::Config& config, std::atomic<int>& stop_signals);

}  // namespace fleettwin::app::bench
