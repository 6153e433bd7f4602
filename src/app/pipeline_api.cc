// What pipeline.h declares besides run_pipeline() itself (pipeline.cc): the roles a process runs, a run's
// summary as JSON, and the process-alone benchmark built on a run.
#include "app/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "config/keys.h"
#include "core/process_stats.h"
#include "registry/server.h"
#include "stages/registry.h"

namespace fleettwin::app {

using config::Config;
using config::ConfigError;
namespace keys = config::keys;

std::string RunSummary::to_json() const {
  std::ostringstream o;
  o << "{\"cars\":" << cars << ",\"published\":" << published << ",\"injected_invalid\":" << injected_invalid
    << ",\"processed\":" << processed << ",\"records_in\":" << records_in << ",\"valid\":" << valid
    << ",\"dlq\":" << dlq << ",\"stored_telemetry\":" << stored_telemetry
    << ",\"stored_this_run\":" << stored_this_run << ",\"twins\":" << twins
    << ",\"twins_behind\":" << twins_behind << ",\"lost\":" << lost << ",\"duplicates\":" << duplicates
    << ",\"failures\":" << failures << ",\"elapsed_s\":" << elapsed_s << ",\"msgs_per_s\":" << msgs_per_s
    << ",\"p50_latency_ms\":" << p50_latency_ms << ",\"p99_latency_ms\":" << p99_latency_ms
    << ",\"peak_rss_mb\":" << peak_rss_mb << ",\"fed_seconds\":" << fed_seconds
    << ",\"fed_msgs_per_s\":" << fed_msgs_per_s << ",\"min_msgs_per_s\":" << min_msgs_per_s
    << ",\"zero_seconds\":" << zero_seconds << ",\"scored\":" << scored << ",\"unscored\":" << unscored
    << ",\"score_skipped\":" << score_skipped << ",\"simulated\":" << (simulated ? "true" : "false")
    << ",\"clean\":" << (clean ? "true" : "false") << "}";
  return o.str();
}

Roles Roles::all() {
  Roles r;
  for (const auto& entry : stages::registry()) r.stages.push_back(entry.descriptor().name);
  return r;
}

Roles Roles::only(const std::string& role) {
  Roles r;
  r.sim = role == "sim";
  r.everything = false;
  if (stages::find_stage(role) != nullptr)
    r.stages.push_back(role);
  else if (!r.sim)
    throw ConfigError("no role called '" + role + "'");
  return r;
}

bool Roles::runs(std::string_view stage) const {
  return std::find(stages.begin(), stages.end(), stage) != stages.end();
}

bool Roles::co_partitioned() const {
  if (everything || stages.size() != 1) return false;
  const auto& role = stages.front();
  return role == "twin" || role == "sink" || role == "aggregate";
}

ProcessBench bench_process_alone(const Config& base, int64_t max_wall_ms) {
  Config config = base;
  config.set(keys::group, "fleettwin.bench.process." + std::to_string(::getpid()), "bench");
  registry::EmbeddedRegistryOptions ro;
  ro.port = 0;
  registry::EmbeddedRegistry registry(ro);
  registry.start();
  config.set(keys::schema_registry, registry.url(), "bench");
  const double cpu0 = core::process_cpu_seconds();
  RunControl control;
  control.max_wall_ms = max_wall_ms;
  control.progress = true;
  control.stop_when_caught_up = true;
  const auto s = run_pipeline(config, control, Roles::only("process"));
  const double cpu1 = core::process_cpu_seconds();
  registry.stop();
  ProcessBench b;
  b.records = s.processed;
  b.cpu_s = cpu1 - cpu0;
  // Wall time includes the one idle second that tells the run it caught up.
  b.msgs_per_s = s.elapsed_s > 1 ? static_cast<double>(s.processed) / (s.elapsed_s - 1) : 0;
  b.msgs_per_cpu_s = b.cpu_s > 0 ? static_cast<double>(s.processed) / b.cpu_s : 0;
  return b;
}

}  // namespace fleettwin::app
