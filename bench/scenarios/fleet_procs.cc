#include "scenarios/fleet_procs.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace fleettwin::app::bench {

namespace {

double rusage_cpu_s(const struct rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string run_service_script(const std::string& service, const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& env) {
  // The services are shell scripts of the source tree (scripts/services); popen is the plain way to run one
  // and read its last line. Arguments are ours (addresses, verbs) but quoted anyway.
  std::string cmd;
  for (const auto& [k, v] : env) cmd += k + "=" + shell_quote(v) + " ";
  cmd += shell_quote(std::string(FLEETTWIN_SOURCE_DIR) + "/scripts/services/" + service);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  char errfile[] = "/tmp/fleettwin-bench-svc.XXXXXX";
  const int fd = ::mkstemp(errfile);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  cmd += " 2>" + shell_quote(errfile);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run " + cmd);
  std::string out, last;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = ::pclose(p);
  const std::string err = read_text(errfile);
  ::unlink(errfile);
  if (status != 0)
    throw std::runtime_error("scripts/services/" + service + " " + (args.empty() ? "" : args[0]) +
                             " failed:\n" + err);
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) last = line;
  return last;
}

ServiceInstance::ServiceInstance(std::string service, std::vector<std::string> start_args,
                                 std::map<std::string, std::string> env)
    : _service(std::move(service)), _env(std::move(env)) {
  std::vector<std::string> args{"start"};
  args.insert(args.end(), start_args.begin(), start_args.end());
  _address = run_service_script(_service, args, _env);
  spdlog::info("bench fleet: {} at {}", _service, _address);
}

ServiceInstance::~ServiceInstance() {
  try {
    run_service_script(_service, {"stop", _address}, _env);
  } catch (const std::exception& e) {
    spdlog::warn("bench fleet: stopping {}: {}", _service, e.what());
  }
}

void ServiceInstance::control(const std::string& verb) const {
  run_service_script(_service, {verb, _address}, _env);
}

bool process_usage(pid_t pid, double& cpu_s, double& peak_rss_mb) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) peak_rss_mb = std::atof(line.c_str() + 6) / 1024.0;
  return true;
}

RoleProcess::RoleProcess(std::string name, std::vector<std::string> args, std::string log_path,
                         std::map<std::string, std::string> env)
    : _name(std::move(name)), _args(std::move(args)), _log(std::move(log_path)), _env(std::move(env)) {}

RoleProcess::~RoleProcess() {
  if (_pid > 0) stop(SIGTERM, 20);
}

void RoleProcess::start() {
  std::vector<std::string> argv_s{"fleettwin"};
  argv_s.insert(argv_s.end(), _args.begin(), _args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed for role " + _name);
  if (pid == 0) {
    ::setpgid(0, 0);
    const int fd = ::open(_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    for (const auto& [k, v] : _env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  _pid = pid;
  _cpu_now = 0;
  ++_starts;
}

bool RoleProcess::alive() {
  if (_pid <= 0) return false;
  int status = 0;
  struct rusage ru {};
  if (::wait4(_pid, &status, WNOHANG, &ru) == _pid) {
    _cpu_now = rusage_cpu_s(ru);  // exact, from the kernel, for the incarnation that ended
    _cpu_done += _cpu_now;
    _cpu_now = 0;
    _pid = -1;
    return false;
  }
  return true;
}

void RoleProcess::sample() {
  if (_pid <= 0) return;
  double cpu = 0, rss = 0;
  if (process_usage(_pid, cpu, rss)) {
    _cpu_now = cpu;
    if (rss > _peak_rss_mb) _peak_rss_mb = rss;
  }
}

void RoleProcess::stop(int sig, int grace_s) {
  if (_pid <= 0) return;
  sample();
  ::kill(_pid, sig);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_s);
  int status = 0;
  struct rusage ru {};
  while (::wait4(_pid, &status, WNOHANG, &ru) != _pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      spdlog::warn("bench fleet: {} did not stop within {} s; killing it", _name, grace_s);
      ::kill(_pid, SIGKILL);
      ::wait4(_pid, &status, 0, &ru);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  _cpu_now = std::max(_cpu_now, rusage_cpu_s(ru));
  _cpu_done += _cpu_now;
  _cpu_now = 0;
  _pid = -1;
}

}  // namespace fleettwin::app::bench
