#pragma once

#include <sys/resource.h>

#include <ctime>

// What this process has used so far (CPU time, peak memory), read from the kernel: the figures run summaries
// and the benchmarks report. Any thread.
namespace fleettwin::core {

/// User + system CPU seconds of this process so far: divided into work done, a per-core figure.
inline double process_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/// CPU seconds of the calling thread so far.
inline double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/// Peak resident memory of this process in MiB (Linux reports ru_maxrss in KiB).
inline double peak_rss_mb() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace fleettwin::core
