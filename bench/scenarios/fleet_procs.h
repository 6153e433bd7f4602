#pragma once

// The processes `fleettwin bench fleet` runs: services from scripts/services (Kafka, PostgreSQL, mosquitto)
// and fleettwin roles as child processes it can kill and restart, with their CPU time and peak memory. Main
// thread.

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace fleettwin::app::bench {

/// Runs `scripts/services/<service> <args...>` of the source tree with `env` added to the environment and
/// returns the last line it printed; std::runtime_error with the script's stderr when it fails.
std::string run_service_script(const std::string& service, const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env = {});

/// One instance of a service of scripts/services: started in the constructor, stopped in the destructor.
class ServiceInstance {
 public:
  ServiceInstance(std::string service, std::vector<std::string> start_args = {},
                  std::map<std::string, std::string> env = {});
  ~ServiceInstance();
  ServiceInstance(const ServiceInstance&) = delete;
  ServiceInstance& operator=(const ServiceInstance&) = delete;
  /// What `start` printed: an address (HOST:PORT) or a URI.
  const std::string& address() const { return _address; }
  /// Runs `<service> <verb> <address>` (restart, pause, resume).
  void control(const std::string& verb) const;

 private:
  std::string _service;
  std::map<std::string, std::string> _env;
  std::string _address;
};

/// A `fleettwin` role (this binary, /proc/self/exe) as a child process: `args` after the program name, its
/// output appended to `log_path`, `env` added to its environment. Keeps the CPU time and peak RSS of every
/// incarnation (sample() reads /proc while it runs).
class RoleProcess {
 public:
  RoleProcess(std::string name, std::vector<std::string> args, std::string log_path,
              std::map<std::string, std::string> env = {});
  ~RoleProcess();
  RoleProcess(const RoleProcess&) = delete;
  RoleProcess& operator=(const RoleProcess&) = delete;
  const std::string& name() const { return _name; }
  const std::string& log_path() const { return _log; }
  pid_t pid() const { return _pid; }
  void start();
  /// Sends `sig` and waits for the process to end (SIGKILL after `grace_s`); folds its usage in.
  void stop(int sig, int grace_s = 30);
  /// The process is running (reaps it when it has ended; false then).
  bool alive();
  /// Reads the running process's CPU time and peak RSS from /proc.
  void sample();
  double cpu_s() const { return _cpu_done + _cpu_now; }
  double peak_rss_mb() const { return _peak_rss_mb; }
  int starts() const { return _starts; }
  /// Times the process was found ended without being told to stop (the bench restarts it).
  int crashes() const { return _crashes; }
  void note_crash() { ++_crashes; }

 private:
  std::string _name;
  std::vector<std::string> _args;
  std::string _log;
  std::map<std::string, std::string> _env;
  pid_t _pid = -1;
  int _starts = 0;
  int _crashes = 0;
  double _cpu_done = 0, _cpu_now = 0, _peak_rss_mb = 0;
};

/// CPU seconds (user + system) and peak RSS in MB of a running process, from /proc; false when it is gone.
bool process_usage(pid_t pid, double& cpu_s, double& peak_rss_mb);

}  // namespace fleettwin::app::bench
