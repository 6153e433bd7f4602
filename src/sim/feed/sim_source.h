#pragma once

#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "codec/json.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "log/log.h"
#include "sim/fleet.h"

namespace fleettwin::sim {

/// Where the simulator's messages come from and how they are paced.
struct SimSourceOptions {
  sim::FleetConfig fleet;
  bool fast = false;                                    ///< simulated clock, as fast as the log accepts
  std::string replay_csv;                               ///< replay this file instead of simulating
  int64_t inject_invalid = 0;                           ///< extra malformed payloads, spread over the run
  std::string ground_truth_path;                        ///< appended to (resumed runs add to it)
  std::vector<std::pair<std::string, int64_t>> resume;  ///< last stored seq per car
};

/// Feeds fleet.telemetry.raw directly from the simulator (or a CSV replay), the embedded mode's stand-in for
/// cars on MQTT: JSON payloads exactly as cars send them, keyed by car id. Paces messages in real time or,
/// with `fast`, drives the simulated clock. Runs its own thread; counters are read by the progress line.
class SimSource {
 public:
  SimSource(SimSourceOptions options, log::Log& log, core::SimClock* clock, core::Metrics& metrics);
  ~SimSource();
  void start();
  void request_stop() { _stop = true; }
  void join();
  bool running() const { return _running.load(); }
  std::string error() const { return _error; }
  int64_t published() const { return _published->value(); }
  int64_t injected() const { return _injected->value(); }
  /// Last seq published per car, merged with the resume point (the expected end state of the store).
  /// Call after join().
  std::unordered_map<std::string, int64_t> expected_last_seq() const;

 private:
  void run();
  void run_fleet(log::Producer& producer);
  void run_replay(log::Producer& producer);
  void publish(log::Producer& producer, const core::Telemetry& t, bool track_seq,
               const codec::TelemetryEncoder& encoder);
  void pace(int64_t due_ms, log::Producer& producer);
  void write_ground_truth(sim::Fleet& fleet);

  SimSourceOptions _options;
  // The fleet's messages under its catalog's names (sim.catalog); CSV rows are cardata-v1.
  codec::TelemetryEncoder _fleet_encoder, _replay_encoder;
  log::Log& _log;
  core::SimClock* _clock;
  std::thread _thread;
  std::atomic<bool> _stop{false};
  std::atomic<bool> _running{false};
  std::string _error;
  std::unique_ptr<sim::Fleet> _fleet;                  // set once run() starts simulating
  std::unordered_map<std::string, int64_t> _last_seq;  // resume point, and CSV replay progress
  std::ofstream _ground_truth;
  std::size_t _last_payload = 768;  // size hint for the next payload's buffer
  int64_t _inject_every = 97;
  int64_t _since_inject = 0;
  core::Counter* _published;
  core::Counter* _injected;
  core::Counter* _failures;
};

/// The malformed payload number `i` of the injection set: one of each class the decoder rejects, in turn.
std::string invalid_payload(int64_t i, const std::string& car);

}  // namespace fleettwin::sim
