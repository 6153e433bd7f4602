#pragma once

// Running the fleettwin binary and the service scripts from tests, as a user would. Header-only; used by the
// e2e and integration tests on their main thread.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fleettwin::testing {

#ifdef FLEETTWIN_BIN
/// The `fleettwin` binary of this build, for test targets that run it (FLEETTWIN_BIN, set by CMake).
inline const std::string kBin = FLEETTWIN_BIN;
#endif

/// Exit code and combined output of a finished command.
struct Result {
  int exit_code = -1;
  std::string out;
};

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs `program args...` to completion, capturing stdout and stderr.
inline Result run(const std::string& program, const std::vector<std::string>& args) {
  std::string cmd = quote(program);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + cmd);
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Starts `program args...` in the background with stdout and stderr to `log_path`; returns its pid.
inline pid_t spawn(const std::string& program, const std::vector<std::string>& args,
                   const std::string& log_path) {
  std::vector<std::string> all{program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + program);
  return pid;
}

/// Sends `sig` and waits for the process; returns its exit code, or -signal when a signal ended it.
inline int stop(pid_t pid, int sig = SIGTERM) {
  kill(pid, sig);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/// Kills (SIGKILL) and reaps, when it goes out of scope, each process it was given that is still running (not
/// yet reaped): a failed ASSERT leaves no process of its test running on.
class KillOnExit {
 public:
  KillOnExit() = default;
  KillOnExit(const KillOnExit&) = delete;
  KillOnExit& operator=(const KillOnExit&) = delete;
  ~KillOnExit() {
    for (const pid_t pid : _pids)
      if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0) stop(pid, SIGKILL);
  }
  pid_t add(pid_t pid) {
    _pids.push_back(pid);
    return pid;
  }

 private:
  std::vector<pid_t> _pids;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A real service (Kafka, mosquitto, FerretDB) started through scripts/services/<name>, stopped when this
/// goes out of scope. Throws when it cannot start: tests that need a service never skip.
class Service {
 public:
  /// `start_args`: extra arguments of `start`, already shell-quoted (e.g. "--shards 2").
  Service(const std::string& source_dir, const std::string& name, const std::string& start_args = "")
      : _script(source_dir + "/scripts/services/" + name) {
    // The script's stderr (progress, the log tail on failure) goes to the test's.
    FILE* out = popen((quote(_script) + " start " + start_args).c_str(), "r");
    if (!out) throw std::runtime_error("cannot run " + _script);
    std::string text;
    char buf[512];
    while (std::fgets(buf, sizeof buf, out)) text = buf;  // the last line is the address
    if (pclose(out) != 0) throw std::runtime_error(_script + " start failed: the real service is required");
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty()) throw std::runtime_error(_script + " start printed no address");
    _address = text;
  }
  ~Service() { std::system((quote(_script) + " stop " + quote(_address) + " >/dev/null 2>&1").c_str()); }
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  const std::string& address() const { return _address; }

 private:
  std::string _script;
  std::string _address;
};

/// Waits for `pred` up to `limit`, asking every `every`; returns whether it became true.
/// Exceptions from `pred` count as "not yet" (e.g. a store file whose schema is still being created).
/// A longer `every` for checks that load what they watch (a query that scans a collection).
template <typename Pred>
bool eventually(Pred pred, std::chrono::seconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(200)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (pred()) return true;
    } catch (const std::exception&) {
      // e.g. the store file exists but its schema is still being created: not yet
    }
    std::this_thread::sleep_for(every);
  }
  return pred();
}

}  // namespace fleettwin::testing
