#include "stages/aggregate/aggregate_stage.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "codec/schemas.h"
#include "config/config.h"
#include "core/topics.h"
#include "stages/record_checks.h"

namespace fleettwin::stages {

namespace t = core::topics;

namespace {
constexpr std::string_view kAttributeSite = "site";
constexpr std::string_view kLocalSite = "local";
}  // namespace

const StageDescriptor& AggregateStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "aggregate",
      {t::kTelemetry},
      {t::kAggregates, t::kAggregatesState, dlq_of(t::kTelemetry)},
      {&config::keys::aggregate_definitions, &config::keys::aggregate_flush_interval,
       &config::keys::aggregate_max_windows},
      "computes window aggregates over event time (per car, fleet or site; revisions for late events) and "
      "writes each window result",
      "telemetry -> window aggregates",
      {}};
  return kDescriptor;
}

std::vector<aggregate::Definition> aggregate_definitions(const config::Config& config,
                                                         const catalog::Catalog& catalog) {
  const std::string path = config.get(config::keys::aggregate_definitions);
  try {
    if (path.empty()) return aggregate::defaults(catalog);
    // A value of several lines is the YAML itself (an environment variable, a Helm value), not a path.
    if (path.find('\n') != std::string::npos)
      return aggregate::parse_yaml(path, config::keys::aggregate_definitions.name(), catalog);
    std::ifstream in(path);
    if (!in) throw config::ConfigError("aggregate.definitions: cannot read " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return aggregate::parse_yaml(text.str(), path, catalog);
  } catch (const aggregate::DefinitionError& e) {
    throw config::ConfigError(e.what());
  }
}

void AggregateStage::check_attributes(const std::vector<aggregate::Definition>& definitions) {
  for (const auto& d : definitions) {
    if (d.grouping == aggregate::Grouping::kAttribute && d.attribute != kAttributeSite)
      throw config::ConfigError("aggregate " + d.name + ": the aggregate stage groups by attribute \"" +
                                std::string(kAttributeSite) + "\" only, not \"" + d.attribute + "\"");
  }
}

AggregateStage::AggregateStage(Options options, core::Metrics& metrics, registry::TelemetryReader reader,
                               Links links)
    : _options(std::move(options)),
      _links(std::move(links)),
      _engine(_options.definitions, _options.engine),
      _reader(std::move(reader)),
      _dead_letters(metrics, "aggregate"),
      _results(metrics.counter("fleettwin_aggregate_results_total",
                               "Window results the aggregate stage wrote (revisions included)")),
      _duplicates(metrics.counter("fleettwin_aggregate_duplicates_total",
                                  "Telemetry the aggregate stage had counted already (replays), ignored")),
      _restored(metrics.counter("fleettwin_aggregate_cars_restored_total",
                                "Cars whose window state the aggregate stage loaded from its changelog")),
      _restore_refused(metrics.counter("fleettwin_aggregate_restore_refused_total",
                                       "Saved car states the aggregate stage could not use (other "
                                       "definitions, damaged): those cars start with empty windows")),
      _memory(metrics.gauge("fleettwin_aggregate_memory_bytes", "Bytes of the aggregate stage's windows")) {
  check_attributes(_options.definitions);
  for (const auto& d : _options.definitions) _columns.emplace(d.name, d.columns());
}

void AggregateStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  for (const auto& r : batch) add(r, out);
  write_results(out);
}

void AggregateStage::add(const log::Record& r, log::Producer& out) {
  std::string error;
  if (!_reader.read(r.value, _t, &error)) {
    _dead_letters.send(r, _reader.failure_reason(), error, out);
    return;
  }
  if (codec::Refusal why; !key_matches(r, _t.car, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  std::string_view site = kLocalSite;
  if (const auto header = r.header(t::kHeaderSite); header && !header->empty()) site = *header;
  const std::string_view attributes[] = {site};
  switch (_engine.add(_t, attributes)) {
    case aggregate::AddStatus::kAccepted:
      break;
    case aggregate::AddStatus::kDuplicate:
      _duplicates.add();
      return;
    case aggregate::AddStatus::kTooLate:
      // Counted by the definitions that still held a window for it, refused by the others: the DLQ keeps it
      // for an operator (a car whose clock jumped, an upload after the allowed lateness).
      _dead_letters.send(
          r, "too_late",
          "event time " + std::to_string(_t.ts) + " is past the allowed lateness of an aggregate", out);
      break;
    case aggregate::AddStatus::kBadTime:
      _dead_letters.send(r, "bad_time", "event time " + std::to_string(_t.ts) + " is out of range", out);
      return;
  }
  if (_options.changelog) {
    _partition_of[_t.car] = r.partition;
    _changed.insert(_t.car);
  }
}

void AggregateStage::write_results(log::Producer& out) {
  codec::AggregateResult a;
  for (auto& res : _engine.flush()) {
    a.aggregate = std::move(res.aggregate);
    a.group = std::move(res.group);
    a.window_start = res.window_start;
    a.window_end = res.window_end;
    a.revision = static_cast<int32_t>(res.revision);
    a.final = res.final;
    a.count = res.count;
    a.values.clear();
    const auto& columns = _columns.at(a.aggregate);
    for (std::size_t i = 0; i < res.values.size() && i < columns.size(); ++i)
      a.values.push_back({columns[i], res.values[i]});
    _value.clear();
    codec::encode_avro_aggregate_result(a, _options.result_schema_id, _value);
    out.send(log::OutRecord{t::kAggregates,
                            codec::aggregate_result_key(a.aggregate, a.group, a.window_start),
                            _value,
                            {},
                            -1,
                            0});
    _results.add();
  }
}

void AggregateStage::tick(log::Producer&) {
  // Once a second, not per batch: the walk is over every car's windows.
  _memory.set(static_cast<int64_t>(_engine.memory_bytes()));
}

void AggregateStage::flush_state(log::Producer& out) {
  // Right before the runner commits: the changelog then holds every car's state as of the committed input,
  // so a copy that takes over resumes exactly where the input resumes (results are flushed after every
  // batch, so the saved state holds no unwritten revision).
  for (const auto& car : _changed) {
    log::OutRecord rec{t::kAggregatesState, car, _engine.save_car(car), {}, -1, 0};
    if (const auto it = _partition_of.find(car); it != _partition_of.end()) rec.partition = it->second;
    out.send(std::move(rec));
  }
  _changed.clear();
}

void AggregateStage::on_assigned(const std::vector<log::TopicPartition>& partitions) {
  std::set<int32_t> gained;
  for (const auto& tp : partitions) {
    if (tp.topic == t::kTelemetry && _held[tp.partition]++ == 0) gained.insert(tp.partition);
  }
  if (gained.empty() || !_links.load) return;
  std::string error;
  for (const auto& snapshot : _links.load(gained)) {
    if (snapshot.state.empty()) continue;
    if (!_engine.restore_car(snapshot.car, snapshot.state, &error)) {
      spdlog::warn("aggregate: saved state of car {} not used: {}", snapshot.car, error);
      _restore_refused.add();
      continue;
    }
    _restored.add();
  }
  spdlog::info("aggregate: {} cars' windows restored for partitions {}", _engine.cars(), gained.size());
}

void AggregateStage::on_revoked(const std::vector<log::TopicPartition>& partitions) {
  std::set<int32_t> lost;
  for (const auto& tp : partitions) {
    if (tp.topic != t::kTelemetry) continue;
    auto it = _held.find(tp.partition);
    if (it != _held.end() && --it->second <= 0) {
      _held.erase(it);
      lost.insert(tp.partition);
    }
  }
  if (lost.empty()) return;
  // The runner flushed this stage's state and committed just before: the new owner loads it from the
  // changelog, and this copy must not keep counting those cars from stale windows if they come back.
  for (auto it = _partition_of.begin(); it != _partition_of.end();) {
    if (lost.contains(it->second)) {
      _engine.forget_car(it->first);
      _changed.erase(it->first);
      it = _partition_of.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace fleettwin::stages
