#pragma once

// The distributed mode's processes as the integration tests start them: the schema registry and the roles,
// each a `fleettwin` process with its log in the test's directory. Header-only; test main thread.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"

namespace fleettwin::testing {

/// A `fleettwin registry` process and the URL it serves on. Plain value; the test stops `pid`.
struct RegistryProcess {
  pid_t pid = -1;
  std::string url;
};

/// Starts `bin registry` on a free port, its data in `dir`/registry and its log in `dir`/registry.log, and
/// waits up to 30 s for it to print its URL. A registry that does not start is killed and fails the test
/// loudly (the exception carries its log): no role can run without it.
inline RegistryProcess start_registry(const std::string& bin, const TempDir& dir) {
  using namespace std::chrono_literals;
  const std::string log_path = dir.file("registry.log");
  RegistryProcess r;
  r.pid = spawn(bin, {"registry", "--listen", "127.0.0.1:0", "--data-dir", dir.file("registry")}, log_path);
  const bool started = eventually(
      [&] {
        const auto log = read_file(log_path);
        const auto at = log.find("http://");
        if (at == std::string::npos) return false;
        r.url = log.substr(at, log.find('\n', at) - at);
        return true;
      },
      30s);
  if (!started) {
    stop(r.pid, SIGKILL);
    throw std::runtime_error("the schema registry did not start:\n" + read_file(log_path));
  }
  return r;
}

/// The command line of one distributed role on `kafka` with the registry at `registry_url`, then `extra`.
/// Short group sessions, so the group notices a killed member within seconds (the broker's minimum is 6 s).
inline std::vector<std::string> role_args(const std::string& role, const std::string& kafka,
                                          const std::string& registry_url,
                                          const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{
      role, "--kafka", kafka, "--schema-registry", registry_url, "--kafka-set", "session.timeout.ms=6000"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

/// Stops each role process (SIGTERM) and expects it to exit cleanly; a failure shows the role's log
/// (`dir`'s file of that name). Needs gtest.
inline void expect_clean_stops(const TempDir& dir, const std::vector<std::pair<pid_t, std::string>>& roles) {
  for (const auto& [pid, log] : roles) EXPECT_EQ(stop(pid), 0) << read_file(dir.file(log));
}

}  // namespace fleettwin::testing
