#include "sim/feed/sim_source.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "codec/json.h"
#include "core/clock.h"
#include "core/metric_catalog.h"
#include "core/topics.h"
#include "sim/csv_replay.h"
#include "sim/feed/car_commands.h"

namespace fleettwin::sim {

std::string invalid_payload(int64_t i, const std::string& car) {
  switch (i % 6) {
    case 0:
      return "{\"car\":\"" + car + "\",\"ts\":";  // truncated JSON
    case 1:
      return "{\"car\":\"" + car + "\",\"ts\":1,\"seq\":\"one\"}";  // wrong type
    case 2:
      return "not json at all";
    case 3:
      return "{\"car\":\"bad car id!\",\"ts\":1,\"seq\":1}";
    case 4:
      return std::string(65537, ' ');  // oversized (above any sane max_payload_bytes)
    default:
      return "[1,2,3]";  // not an object
  }
}

SimSource::SimSource(SimSourceOptions options, log::Log& log, core::SimClock* clock, core::Metrics& metrics)
    : _options(std::move(options)),
      _fleet_encoder(_options.fleet.catalog ? _options.fleet.catalog : catalog::builtin()),
      _log(log),
      _clock(clock),
      _published(&metrics.counter(core::metric::kSimPublished)),
      _injected(&metrics.counter(core::metric::kSimInjectedInvalid)),
      _failures(&metrics.counter(core::metric::kSimFailures)) {
  for (const auto& [car, seq] : _options.resume) _last_seq[car] = seq;
}

SimSource::~SimSource() {
  request_stop();
  join();
}

void SimSource::start() {
  _running = true;
  _thread = std::thread([this] { run(); });
}

void SimSource::join() {
  if (_thread.joinable()) _thread.join();
}

std::unordered_map<std::string, int64_t> SimSource::expected_last_seq() const {
  auto out = _last_seq;
  if (_fleet) {
    // The fleet knows every car's last seq: cheaper than tracking it per published message.
    for (std::size_t i = 0; i < _fleet->size(); ++i) {
      auto& seq = out[_fleet->car_id(i)];
      seq = std::max(seq, _fleet->car(i).seq());
    }
  }
  return out;
}

void SimSource::run() {
  pthread_setname_np(pthread_self(), "ft-sim");
  try {
    auto producer = _log.producer();
    if (!_options.ground_truth_path.empty()) {
      _ground_truth.open(_options.ground_truth_path, std::ios::app);
      if (!_ground_truth)
        throw std::runtime_error("cannot open ground truth file " + _options.ground_truth_path);
    }
    if (_options.replay_csv.empty()) {
      run_fleet(*producer);
    } else {
      run_replay(*producer);
    }
    // Whatever was not yet injected goes out now, so the count is exact however short the run.
    for (int64_t i = _injected->value(); i < _options.inject_invalid && !_stop; ++i) {
      producer->send(log::OutRecord{
          core::topics::kTelemetryRaw, "car-invalid", invalid_payload(i, "car-invalid"), {}, -1, 0});
      _injected->add();
    }
    if (producer->flush(std::chrono::seconds(30)) != 0)
      throw std::runtime_error("raw records not acknowledged");
  } catch (const std::exception& e) {
    _error = e.what();
    spdlog::error("simulator stopped: {}", e.what());
  }
  _running = false;
}

void SimSource::publish(log::Producer& producer, const core::Telemetry& t, bool track_seq,
                        const codec::TelemetryEncoder& encoder) {
  log::OutRecord r;
  r.topic = core::topics::kTelemetryRaw;
  r.key = t.car;
  r.value.reserve(_last_payload + codec::kJsonPadding);
  encoder.encode(t, r.value);
  _last_payload = r.value.size();
  producer.send(std::move(r));
  _published->add();
  if (track_seq) _last_seq[t.car] = t.seq;
  if (_injected->value() < _options.inject_invalid && ++_since_inject >= _inject_every) {
    _since_inject = 0;
    const int64_t i = _injected->value();
    producer.send(log::OutRecord{core::topics::kTelemetryRaw, t.car, invalid_payload(i, t.car), {}, -1, 0});
    _injected->add();
  }
}

void SimSource::pace(int64_t due_ms, log::Producer& producer) {
  if (_clock) _clock->advance_to(std::min(due_ms, _options.fast ? due_ms : core::wall_clock_ms()));
  if (_options.fast) return;
  // Real time: hand over what is ready, then sleep until the message is due.
  const int64_t wait = due_ms - core::wall_clock_ms();
  if (wait > 0) {
    producer.flush(std::chrono::seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(wait, 200)));
  }
}

void SimSource::write_ground_truth(sim::Fleet& fleet) {
  auto failures = fleet.take_failures();
  if (failures.empty()) return;
  _failures->add(static_cast<int64_t>(failures.size()));
  if (_ground_truth.is_open()) {
    for (const auto& g : failures) _ground_truth << sim::to_json_line(g) << '\n';
    _ground_truth.flush();
  }
}

void SimSource::run_fleet(log::Producer& producer) {
  _fleet = std::make_unique<sim::Fleet>(_options.fleet);
  sim::Fleet& fleet = *_fleet;
  if (!_options.resume.empty()) fleet.resume(_options.resume);
  core::Telemetry t;
  int64_t n = 0;
  // Without MQTT the simulator is also the cars' command channel: it reads fleet.commands itself and answers
  // on fleet.command-acks as a car would on fleet/{car}/acks (keyed by the car, as the bridge does).
  auto commands_in = _log.consumer("fleettwin.sim");
  commands_in->subscribe({core::topics::kCommands});
  CarCommands commands(fleet);
  auto last_check = std::chrono::steady_clock::now();
  auto obey_commands = [&] {
    last_check = std::chrono::steady_clock::now();
    auto batch = commands_in->poll(1000, std::chrono::milliseconds(0));
    if (batch.empty()) return;
    bool answered = false;
    for (const auto& r : batch) {
      const auto index = fleet.car_index(r.key);
      if (!index || !fleet.simulates(*index)) continue;  // not one of our cars
      const auto ack = commands.obey(*index, r.value, core::wall_clock_ms());
      producer.send(
          log::OutRecord{core::topics::kCommandAcks, ack.car, codec::command_ack_to_json(ack), {}, -1, 0});
      answered = true;
    }
    // Hand the acks over now: the embedded log's producer appends a topic's records in batches of 256, and a
    // car answers a few commands a minute, so an ack left in the batch waited for 255 others (tens of
    // seconds at a high failure rate, for ever at a low one) while the operator saw "pending".
    if (answered && producer.flush(std::chrono::seconds(30)) != 0)
      throw std::runtime_error("command acks not acknowledged by the log");
    commands_in->commit(log::next_offsets(batch));
  };
  while (!_stop) {
    const int64_t due = fleet.next_due_ms();
    if (due == sim::Fleet::kNoMoreMessages) break;  // the run's --duration is over (in real time, too)
    while (!_options.fast && !_stop && due - core::wall_clock_ms() > 0) {
      pace(due, producer);
      obey_commands();
    }
    if (_stop) break;
    if (!fleet.next(t)) break;
    pace(t.ts, producer);
    publish(producer, t, false, _fleet_encoder);
    if ((++n & 1023) == 0) write_ground_truth(fleet);
    if ((n & 255) == 0 && std::chrono::steady_clock::now() - last_check > std::chrono::milliseconds(200))
      obey_commands();
  }
  commands_in->close();
  write_ground_truth(fleet);
}

void SimSource::run_replay(log::Producer& producer) {
  sim::CsvReplay replay(_options.replay_csv, _options.fleet.box);
  core::Telemetry t;
  int64_t first_ts = -1, start_wall = core::wall_clock_ms();
  while (!_stop) {
    const auto status = replay.next(t);
    if (status == sim::CsvReplay::Status::kEnd) break;
    if (status == sim::CsvReplay::Status::kError) {
      // A bad header or an unreadable file ends the replay; a bad row is reported and skipped.
      if (replay.error().line <= 1)
        throw std::runtime_error(_options.replay_csv + ": " + replay.error().to_string());
      spdlog::warn("{}: {} (row skipped)", _options.replay_csv, replay.error().to_string());
      continue;
    }
    if (first_ts < 0) first_ts = t.ts;
    // The recording's own time drives the clock (offline detection), in both pacing modes.
    if (_clock) _clock->advance_to(t.ts);
    if (!_options.fast) {
      // Keep the recording's pacing, shifted to now.
      const int64_t due = start_wall + (t.ts - first_ts);
      while (!_stop && due - core::wall_clock_ms() > 0) {
        producer.flush(std::chrono::seconds(30));
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::min<int64_t>(due - core::wall_clock_ms(), 200)));
      }
    }
    publish(producer, t, true, _replay_encoder);
  }
}

}  // namespace fleettwin::sim
