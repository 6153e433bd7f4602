#include "cli/run_output.h"

#include <cstdio>
#include <fstream>

namespace fleettwin::cli {

void print_summary(const app::RunSummary& s) {
  if (!s.simulated) {
    // Real cars: no simulator to count against, so no exactness line and no simulated failures.
    std::fprintf(stderr,
                 "\nsummary: real cars, %lld processed, %lld DLQ, %lld stored this run (%lld in store), %lld "
                 "twins, duplicates %lld\n"
                 "         %.0f msg/s end to end, latency p50 %.1f ms p99 %.1f ms, peak RSS %.0f MB\n"
                 "         scored %lld, unscored %lld (%lld skipped while the score stage was behind)\n",
                 (long long)s.processed, (long long)s.dlq, (long long)s.stored_this_run,
                 (long long)s.stored_telemetry, (long long)s.twins, (long long)s.duplicates, s.msgs_per_s,
                 s.p50_latency_ms, s.p99_latency_ms, s.peak_rss_mb, (long long)s.scored,
                 (long long)s.unscored, (long long)s.score_skipped);
    return;
  }
  std::fprintf(
      stderr,
      "\nsummary: %lld cars, %lld published, %lld processed, %lld DLQ, %lld stored this run (%lld in "
      "store), %lld twins\n"
      "         exactness: lost %lld, duplicates %lld, twins behind %lld\n"
      "         %.0f msg/s end to end, latency p50 %.1f ms p99 %.1f ms, peak RSS %.0f MB, %lld failures "
      "simulated\n",
      (long long)s.cars, (long long)s.published, (long long)s.processed, (long long)s.dlq,
      (long long)s.stored_this_run, (long long)s.stored_telemetry, (long long)s.twins, (long long)s.lost,
      (long long)s.duplicates, (long long)s.twins_behind, s.msgs_per_s, s.p50_latency_ms, s.p99_latency_ms,
      s.peak_rss_mb, (long long)s.failures);
  // A run fed for less than a whole second has no per-second figures: a line of zeros would read as a stall.
  if (s.fed_seconds > 0)
    std::fprintf(
        stderr,
        "         while fed (%lld s): %.0f msg/s stored on average, slowest second %lld, %lld seconds "
        "at 0\n",
        (long long)s.fed_seconds, s.fed_msgs_per_s, (long long)s.min_msgs_per_s, (long long)s.zero_seconds);
  std::fprintf(stderr,
               "         scored %lld, unscored %lld (%lld skipped while the score stage was behind)\n",
               (long long)s.scored, (long long)s.unscored, (long long)s.score_skipped);
}

void write_json(const std::string& path, const std::string& json) {
  std::ofstream out(path);
  out << json << '\n';
  if (!out) throw config::ConfigError("cannot write " + path);
}

}  // namespace fleettwin::cli
