#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/telemetry.h"
#include "sim/car.h"
#include "sim/failure.h"
#include "sim/signal_map.h"

namespace fleettwin::sim {

/// Settings of a simulated fleet. Plain value.
struct FleetConfig {
  std::size_t cars = 1000;
  int64_t interval_ms = 10'000;  ///< each car sends one message per interval
  int64_t start_ms = 0;          ///< ts of car 0's first message (the app passes "now")
  int64_t duration_ms = 0;  ///< messages due at or after start_ms + duration_ms are not produced; 0 = forever
  uint64_t seed = 1;
  double failure_rate = 0.02;  ///< expected failure onsets per car per simulated hour
  int64_t ramp_ms = 120'000;   ///< a failure grows from invisible to its full signature over this time
  BoundingBox box;             ///< where the cars drive
  std::string id_prefix = "car-";
  int64_t firmware_release_ms =
      int64_t{6} * 3'600'000;                    ///< the fleet's firmware moves on this often; 0 = never
  std::vector<PlannedFailure> planned_failures;  ///< forced failures on top of the random ones
  /// This fleet simulates only cars with index % shards == shard (simulator worker processes split a fleet
  /// this way); ids, timing and content of each car are those of the whole fleet.
  std::size_t shard = 0;
  std::size_t shards = 1;
  /// The catalog the messages are written in (`sim.catalog`): each cardata-v1 value under the catalog
  /// signal of that name or alias (SignalMap). Null: the built-in cardata-v1 catalog.
  std::shared_ptr<const catalog::Catalog> catalog;
  /// Share of the cars on newer firmware (`sim.upgraded_share`, 0..1): they also send the catalog's
  /// signals added after version 1 (upgraded_car(), SignalMap).
  double upgraded_share = 0;
};

/// Why `config` cannot be simulated, or an empty string when it can.
std::string validate(const FleetConfig& config);

/// Car id of car `index`: prefix + the index zero-padded to max(5, digits of cars - 1), e.g. "car-00042".
std::string car_id(const FleetConfig& config, std::size_t index);

/// A simulated fleet: produces every car's telemetry in due-time order. Car i's message with seq k+1 is due
/// at start_ms + k * interval_ms + i * interval_ms / cars, so the cars' sends spread evenly over each
/// interval. The fleet never sleeps or reads a clock: the caller paces it in real time (sleep until
/// next_due_ms()) or runs it as fast as it can and advances a core::SimClock to each message's ts.
/// Deterministic: a given config yields the same messages and ground truth, and car i's content (values,
/// position, seq, ts minus its offset) does not depend on how many cars there are. Not thread-safe: one
/// thread (the simulator's producer loop) owns it.
class Fleet {
 public:
  static constexpr int64_t kNoMoreMessages = std::numeric_limits<int64_t>::max();

  /// Throws std::invalid_argument when validate(config) reports a problem.
  explicit Fleet(FleetConfig config);

  /// Fills `out` with the next message (reusing its car string's capacity) and returns true, or returns
  /// false once duration_ms is over.
  bool next(core::Telemetry& out);

  /// Due time (= ts) of the message next() produces next, or kNoMoreMessages.
  int64_t next_due_ms() const;

  /// Failures whose onset happened (in simulated time) since the last call, in the order the fleet found
  /// them. A failure is found when its car produces its first message at or after the onset, so records
  /// lag the onset by at most one interval; onset_ts itself is exact.
  std::vector<GroundTruth> take_failures();

  /// Restarts the fleet after a crash. Afterwards next() continues every listed car at seq last + 1 with
  /// exactly the messages an uninterrupted run with the same config would have produced for those seqs;
  /// cars not listed (or listed with seq <= 0) start again at seq 1. Unknown ids are ignored; for a
  /// duplicated id the highest seq wins. Ground truth: take_failures() afterwards reports only failures
  /// whose onset lies after the resumed car's last seq (those at or before it were reported by the crashed
  /// run, or belong to messages that run already sent). Cost: each car is replayed up to its seq, about
  /// 0.1 µs per skipped message.
  void resume(const std::vector<std::pair<std::string, int64_t>>& last_seq_per_car);

  std::size_t size() const { return _cars.size(); }
  const FleetConfig& config() const { return _config; }
  const std::string& car_id(std::size_t index) const { return _ids[index]; }
  /// Index of the car with this id, or nullopt.
  std::optional<std::size_t> car_index(std::string_view id) const;
  /// ts of car `index`'s message with sequence number `seq` (>= 1).
  int64_t due_ms(std::size_t index, int64_t seq) const;
  /// Read-only view of one car's model (trip state, active failures), e.g. for tests and dashboards.
  const Car& car(std::size_t index) const { return _cars[index]; }
  /// The car itself, to apply commands (sim/commands.h) between messages.
  Car& car(std::size_t index) { return _cars[index]; }
  /// Whether car `index` belongs to this fleet's shard.
  bool simulates(std::size_t index) const { return index % _config.shards == _config.shard; }

 private:
  void reset_schedule(const std::vector<int64_t>& first_round);
  /// Steps car `i` and writes its message's values in the fleet's catalog.
  void step_car(std::size_t i, core::Telemetry& out, std::vector<FailureOnset>* onsets);
  void settle();

  FleetConfig _config;
  CarConstants _constants;
  std::vector<Car> _cars;
  std::vector<std::string> _ids;
  std::vector<int64_t> _offset;  // ms after the round's start
  int64_t _end_ms;               // kNoMoreMessages when duration_ms is 0

  // Schedule: in round k every active car sends its message with seq k + 1, in index order; a resumed car
  // further ahead waits in _pending (sorted by round, latest first) until its round comes.
  std::vector<uint32_t> _active;
  std::vector<std::pair<int64_t, uint32_t>> _pending;
  int64_t _round = 0;
  std::size_t _pos = 0;
  bool _finished = false;

  std::vector<FailureOnset> _onsets;  // scratch, reused
  std::unique_ptr<SignalMap> _map;    // null: messages in cardata-v1 as the cars write them
  std::vector<ExtraSignalState> _extra;
  std::vector<GroundTruth> _failures;
};

}  // namespace fleettwin::sim
