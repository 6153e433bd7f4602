#include "stages/aggregate/aggregate_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "aggregate/partial_codec.h"
#include "codec/schemas.h"
#include "config/config.h"
#include "core/topics.h"
#include "stages/record_checks.h"
#include "stages/score/score_stage.h"

namespace fleettwin::stages {

namespace t = core::topics;

namespace {
constexpr std::string_view kAttributeSite = "site";
constexpr std::string_view kLocalSite = "local";
constexpr std::string_view kAttributeStatus = "status";

/// The stage's descriptor: the static one, reading fleet.scores too (and refusing bad ones to its DLQ) when
/// some definition groups by status.
StageDescriptor descriptor_for(const std::vector<aggregate::Definition>& definitions) {
  StageDescriptor d = AggregateStage::static_descriptor();
  if (AggregateStage::needs_scores(definitions)) {
    d.inputs.emplace_back(t::kScores);
    d.outputs.push_back(dlq_of(t::kScores));
  }
  return d;
}

aggregate::EngineOptions engine_options(const AggregateStage::Options& o) {
  aggregate::EngineOptions e = o.engine;
  e.combine_own_partials = !o.changelog;
  return e;
}
}  // namespace

const StageDescriptor& AggregateStage::static_descriptor() {
  static const StageDescriptor kDescriptor{
      "aggregate",
      {t::kTelemetry, t::kAggregatesPartials},
      {t::kAggregates, t::kAggregatesState, t::kAggregatesPartials, dlq_of(t::kTelemetry),
       t::kAggregatesPartialsDlq},
      {&config::keys::aggregate_definitions, &config::keys::aggregate_flush_interval,
       &config::keys::aggregate_max_windows, &config::keys::aggregate_status_held_per_car,
       &config::keys::aggregate_status_held_max},
      "computes window aggregates over event time (per car, fleet, site or health status; revisions for late "
      "events) and writes each window result (with a status group it also reads fleet.scores)",
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
    if (d.grouping == aggregate::Grouping::kAttribute && d.attribute != kAttributeSite &&
        d.attribute != kAttributeStatus)
      throw config::ConfigError("aggregate " + d.name + ": the aggregate stage groups by attribute \"" +
                                std::string(kAttributeSite) + "\" or \"" + std::string(kAttributeStatus) +
                                "\" only, not \"" + d.attribute + "\"");
  }
}

bool AggregateStage::needs_scores(const std::vector<aggregate::Definition>& definitions) {
  return std::any_of(definitions.begin(), definitions.end(), [](const aggregate::Definition& d) {
    return d.grouping == aggregate::Grouping::kAttribute && d.attribute == kAttributeStatus;
  });
}

AggregateStage::AggregateStage(Options options, core::Metrics& metrics, registry::TelemetryReader reader,
                               Links links)
    : _options(std::move(options)),
      _descriptor(descriptor_for(_options.definitions)),
      _links(std::move(links)),
      _engine(_options.definitions, engine_options(_options)),
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
      _replayed(
          metrics.counter("fleettwin_aggregate_replayed_total",
                          "Stored events the embedded aggregate stage counted again at start (the store's "
                          "history after each car's saved state)")),
      _state_saved(
          metrics.counter("fleettwin_aggregate_states_saved_total",
                          "Car states the embedded aggregate stage wrote to the data dir's state table")),
      _memory(metrics.gauge(
          "fleettwin_aggregate_memory_bytes",
          "Bytes of the aggregate stage's windows (and of the events waiting for their score)")),
      _status_evicted(
          metrics.counter("fleettwin_aggregate_status_evicted_total",
                          "Events the aggregate stage counted with status unknown because too many "
                          "were waiting for their score (aggregate.status_held_*)")) {
  check_attributes(_options.definitions);
  for (const auto& a : _engine.attributes()) _is_status.push_back(a == kAttributeStatus);
  _attribute_values.resize(_is_status.size());
  if (needs_scores(_options.definitions)) {
    _matcher.emplace(
        _options.status_held,
        [this](const log::Record& r, const core::Telemetry& t, core::HealthStatus status) {
          count(r, t, status, *_out);
        },
        _options.sites);
  }
  for (const auto& d : _options.definitions) {
    _columns.emplace(d.name, d.columns());
    _groups = _groups || d.grouping != aggregate::Grouping::kCar;
  }
}

std::string AggregateStage::role_topic(std::string_view base, std::string_view group) {
  std::string topic(base);
  if (group.empty() || group == "fleettwin.aggregate") return topic;
  topic += '.';
  // Kafka's topic names: [a-zA-Z0-9._-], at most 249 characters.
  for (const char c : group.substr(0, 200)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    topic += ok ? c : '_';
  }
  return topic;
}

std::string AggregateStage::group_state_key(int32_t partition) {
  return ".groups." + std::to_string(partition);
}

int32_t AggregateStage::group_state_partition(std::string_view key) {
  constexpr std::string_view kPrefix = ".groups.";
  if (!key.starts_with(kPrefix) || key.size() == kPrefix.size() || key.size() > kPrefix.size() + 9) return -1;
  int32_t p = 0;
  for (const char c : key.substr(kPrefix.size())) {
    if (c < '0' || c > '9') return -1;
    p = p * 10 + (c - '0');
  }
  return p;
}

void AggregateStage::process(const std::vector<log::Record>& batch, log::Producer& out) {
  _out = &out;
  for (const auto& r : batch) {
    if (r.topic == _options.partials_topic) {
      combine(r, out);
    } else if (r.topic == t::kScores) {
      score(r, out);
    } else {
      add(r, out);
    }
  }
  write_results(out);
}

bool AggregateStage::partial_belongs_to(const aggregate::Partial& p, int32_t partition) {
  const int32_t n = std::max(_options.partials_partitions, 1);
  if (log::partition_for_key(aggregate::partial_group_key(p.aggregate, p.group), n) == partition) return true;
  if (_partials_elsewhere++ == 0)
    spdlog::info(
        "aggregate: partials on {} for groups of other partitions (the topic had another partition count "
        "when they were written) are left to their writers, who write them again to their new partitions",
        _options.partials_topic);
  return false;
}

void AggregateStage::combine(const log::Record& r, log::Producer& out) {
  aggregate::Partial p;
  std::string error;
  const bool decoded = aggregate::decode_partial(r.value, p, &error);
  if (decoded && !partial_belongs_to(p, r.partition)) return;
  if (!decoded || !_engine.combine(p, &error)) {
    // One DLQ whatever the role's partials topic is called (every DLQ is one of core::topics::kDlqTopics).
    _dead_letters.send(t::kAggregatesPartialsDlq,
                       log::OutRecord{t::kAggregatesPartialsDlq, r.key, r.value, r.headers, -1, 0},
                       "bad_partial", error,
                       r.topic + "/" + std::to_string(r.partition) + "@" + std::to_string(r.offset), out);
  }
}

void AggregateStage::write_partials(log::Producer& out) {
  for (auto& p : _engine.take_partials()) {
    const auto group_key = aggregate::partial_group_key(p.aggregate, p.group);
    out.send(log::OutRecord{_options.partials_topic,
                            aggregate::partial_key(p),
                            aggregate::encode_partial(p),
                            {},
                            log::partition_for_key(group_key, std::max(_options.partials_partitions, 1)),
                            0});
  }
}

void AggregateStage::limit_commit(log::Offsets& next) const {
  // On the log only: the embedded log dies with the process (a restart replays the store's history), and
  // holding its offsets back would fill its partitions while the first model trains, stalling its producers.
  if (_matcher && _options.changelog) _matcher->limit_commit(next);
}

void AggregateStage::score(const log::Record& r, log::Producer& out) {
  if (!_matcher) return;
  // A shadow model's scores are not the status of anything: the active model's are.
  if (const auto role = r.header(kHeaderModelRole); role && *role == "shadow") return;
  codec::AnomalyScore s;
  if (codec::Refusal why; !read_score(r, s, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  _matcher->add_score(r, s.car, s.seq, core::score_status(s.score, s.threshold, s.in_alert));
}

void AggregateStage::add(const log::Record& r, log::Producer& out) {
  if (codec::Refusal why; !read_telemetry(r, _reader, _t, why)) {
    _dead_letters.send(r, why.reason, why.detail, out);
    return;
  }
  if (_matcher) {
    _matcher->add_event(r, _t);  // counted once its score (or the proof it has none) is read
    return;
  }
  count(r, _t, core::HealthStatus::kUnknown, out);
}

void AggregateStage::count(const log::Record& r, const core::Telemetry& ev, core::HealthStatus status,
                           log::Producer& out) {
  std::string_view site = kLocalSite;
  if (const auto header = _options.sites ? r.header(t::kHeaderSite) : std::nullopt;
      header && !header->empty())
    site = *header;
  for (std::size_t i = 0; i < _is_status.size(); ++i)
    _attribute_values[i] = _is_status[i] ? core::to_string(status) : site;
  // On the log, a group's windows are kept per source partition (saved with that partition's cars); in one
  // process every event is of the one source.
  const int32_t source = _options.changelog ? r.partition : 0;
  switch (_engine.add(ev, _attribute_values, source)) {
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
          "event time " + std::to_string(ev.ts) + " is past the allowed lateness of an aggregate", out);
      break;
    case aggregate::AddStatus::kBadTime:
      _dead_letters.send(r, "bad_time", "event time " + std::to_string(ev.ts) + " is out of range", out);
      return;
  }
  if (_options.changelog) _partition_of[ev.car] = r.partition;
  if (_options.changelog || _links.save) {
    _changed.insert(ev.car);
    if (_groups) _changed_sources.insert(source);
  }
}

void AggregateStage::write_results(log::Producer& out) {
  codec::AggregateResult a;
  auto results = _engine.flush();
  write_partials(out);
  for (auto& res : results) {
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
  _memory.set(static_cast<int64_t>(_engine.memory_bytes() + (_matcher ? _matcher->memory_bytes() : 0)));
  if (_matcher) {
    _status_evicted.add(_matcher->evicted() - _status_evicted_seen);
    _status_evicted_seen = _matcher->evicted();
  }
  save_flushed_state();
}

void AggregateStage::flush_state(log::Producer& out) {
  if (!_options.changelog) {
    if (!_links.save) return;
    // The results of the replay at start wait in the engine until here when no record follows it.
    write_results(out);
    save_flushed_state();  // before the new flush is queued: its results are not flushed yet
    // The runner also flushes whenever its input is idle, which a fast stage is many times a second: the
    // states are taken at most once per interval (a clean stop takes the rest, final_flush).
    const auto now = std::chrono::steady_clock::now();
    if (now >= _next_state && !_changed.empty()) {
      take_flushed_state();
      _next_state = now + std::chrono::milliseconds(_options.flush_interval_ms);
    }
    return;
  }
  // Right before the runner commits: the changelog then holds every car's state as of the committed input,
  // so a copy that takes over resumes exactly where the input resumes. The runner calls this only once the
  // results and partials sent before are acknowledged (Stage::flush_state): a kill between the two leaves the
  // changelog behind the results, never ahead (a state saved past results lost in flight has their windows
  // closed, and the replayed events are duplicates of it: those results would never be written).
  for (const auto& car : _changed) {
    log::OutRecord rec{_options.state_topic, car, _engine.save_car(car), {}, -1, 0};
    if (const auto it = _partition_of.find(car); it != _partition_of.end()) rec.partition = it->second;
    out.send(std::move(rec));
  }
  _changed.clear();
  // A source partition's group windows on its own partition, beside its cars: a copy that gains it loads
  // both as of the same commit.
  for (const int32_t p : _changed_sources)
    out.send(log::OutRecord{_options.state_topic, group_state_key(p), _engine.save_source(p), {}, p, 0});
  _changed_sources.clear();
}

void AggregateStage::take_flushed_state() {
  if (_changed.empty()) return;
  Unsaved u;
  u.cars.reserve(_changed.size());
  for (const auto& car : _changed) u.cars.push_back({car, _engine.save_car(car)});
  _changed.clear();
  for (const int32_t p : _changed_sources) u.cars.push_back({group_state_key(p), _engine.save_source(p)});
  _changed_sources.clear();
  _unsaved.push_back(std::move(u));
  // Bounded however far the store falls behind: the two newest flushes become one (a car's newer state
  // wins), which waits for the newer one's results.
  if (_unsaved.size() <= 3) return;
  Unsaved newest = std::move(_unsaved.back());
  _unsaved.pop_back();
  auto& older = _unsaved.back();
  std::unordered_map<std::string, std::size_t> at;
  for (std::size_t i = 0; i < older.cars.size(); ++i) at.emplace(older.cars[i].car, i);
  for (auto& c : newest.cars) {
    if (const auto it = at.find(c.car); it != at.end())
      older.cars[it->second].state = std::move(c.state);
    else
      older.cars.push_back(std::move(c));
  }
  older.stored = std::move(newest.stored);
}

void AggregateStage::final_flush() {
  take_flushed_state();
  save_flushed_state();
}

void AggregateStage::save_flushed_state() {
  if (!_links.save || _unsaved.empty()) return;
  // Every flush queued so far had its outputs flushed since: from here on the store's progress tells.
  for (auto& u : _unsaved) {
    if (!u.stored) u.stored = _links.results_stored ? _links.results_stored() : [] { return true; };
  }
  // A state saved before the store has the results it had emitted would, after a crash, leave those windows
  // closed in the engine and missing from the store.
  std::unordered_map<std::string, std::string> ready;
  while (!_unsaved.empty() && _unsaved.front().stored()) {
    for (auto& c : _unsaved.front().cars) ready[std::move(c.car)] = std::move(c.state);
    _unsaved.pop_front();
  }
  if (ready.empty()) return;
  std::vector<AggregateSnapshot> cars;
  cars.reserve(ready.size());
  for (auto& [car, state] : ready) cars.push_back({car, std::move(state)});
  try {
    _links.save(cars);
    _state_saved.add(static_cast<int64_t>(cars.size()));
  } catch (const std::exception& e) {
    // The table keeps the older states meanwhile: a restart replays more of the history, nothing is lost.
    spdlog::warn("aggregate: state of {} cars not saved ({}); trying again at the next flush", cars.size(),
                 e.what());
    _unsaved.push_front({std::move(cars), [] { return true; }});
  }
}

void AggregateStage::on_assigned(const std::vector<log::TopicPartition>& partitions) {
  std::set<int32_t> gained;
  std::set<int32_t> gained_partials;
  for (const auto& tp : partitions) {
    if (tp.topic == t::kTelemetry && _held[tp.partition]++ == 0) gained.insert(tp.partition);
    if (tp.topic == _options.partials_topic && _held_partials.insert(tp.partition).second)
      gained_partials.insert(tp.partition);
  }
  if (!gained_partials.empty() && _links.load_partials) restore_partials(gained_partials);
  if (gained.empty()) return;
  if (_links.load) restore(gained);
  if (_links.replay) replay_history();
}

void AggregateStage::replay_history() {
  const auto replay = std::exchange(_links.replay, nullptr);  // once: the embedded log has one member
  // A car without usable state is rebuilt from this much of its newest history: every window still open at
  // its newest event is then complete.
  int64_t horizon = 0;
  for (const auto& d : _options.definitions) horizon = std::max(horizon, d.size_ms + d.grace_ms);
  auto before = [horizon](int64_t ts) { return ts > INT64_MIN + horizon ? ts - horizon : INT64_MIN; };
  auto from = [&](const std::string& car, std::optional<int64_t> newest) {
    // A saved car goes on from its own event time, however far behind the store its state is (under --fast
    // a flush interval of wall time is hours of event time): the events counted at that ts are duplicates
    // to the seq guard.
    const int64_t saved = _engine.car_event_time(car);
    if (saved != INT64_MIN) return saved;
    // When the table held this run's definitions' states, a car without one is new since their last save:
    // its whole history is replayed, so its windows whose results died with the memory log (closed ones
    // included, which the engine no longer holds) are written again.
    if (_restored_here > 0) return INT64_MIN;
    return newest ? before(*newest) : INT64_MIN;
  };
  int64_t counted = 0;
  // The store keeps no event's status: a replayed event is of status `unknown`.
  for (std::size_t i = 0; i < _is_status.size(); ++i)
    _attribute_values[i] = _is_status[i] ? core::to_string(core::HealthStatus::kUnknown) : kLocalSite;
  auto add = [&](const core::Telemetry& t) {
    const auto status = _engine.add(t, _attribute_values);
    if (status == aggregate::AddStatus::kAccepted || status == aggregate::AddStatus::kTooLate) {
      _changed.insert(t.car);
      if (_groups) _changed_sources.insert(0);
      ++counted;
    }
  };
  replay(from, add);
  _replayed.add(counted);
  spdlog::info("aggregate: {} stored events counted after the saved states ({} cars)", counted,
               _engine.cars());
}

void AggregateStage::restore(const std::set<int32_t>& gained) {
  std::string error;
  for (const auto& snapshot : _links.load(gained)) {
    if (snapshot.state.empty()) continue;
    if (const int32_t p = group_state_partition(snapshot.car); p >= 0) {
      // The source's group windows; their partials are made again at the next flush, for the combiner
      // (embedded, it died with the process; on the log, a copy that took the group over has them already
      // and takes the same counts as no change).
      if (!_engine.restore_source(p, snapshot.state, &error)) {
        spdlog::warn("aggregate: saved group windows of partition {} not used: {}", p, error);
        _restore_refused.add();
      } else {
        _engine.touch_source(p);
      }
      continue;
    }
    if (!_engine.restore_car(snapshot.car, snapshot.state, &error)) {
      spdlog::warn("aggregate: saved state of car {} not used: {}", snapshot.car, error);
      _restore_refused.add();
      continue;
    }
    _restored.add();
    ++_restored_here;
  }
  spdlog::info("aggregate: {} cars' windows restored for partitions {}", _engine.cars(), gained.size());
}

void AggregateStage::restore_partials(const std::set<int32_t>& gained) {
  std::string error;
  int64_t taken = 0, refused = 0;
  for (const auto& r : _links.load_partials(gained)) {
    aggregate::Partial p;
    if (r.value.empty()) continue;  // a tombstone
    const bool decoded = aggregate::decode_partial(r.value, p, &error);
    if (decoded && !partial_belongs_to(p, r.partition)) continue;
    if (decoded && _engine.combine(p, &error)) {
      ++taken;
    } else if (++refused <= 3) {
      spdlog::warn("aggregate: partial {} not used: {}", r.key, error);
    }
  }
  spdlog::info("aggregate: {} partials read for partitions of {} ({} refused)", taken,
               _options.partials_topic, refused);
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
  std::set<int32_t> lost_partials;
  std::set<int32_t> lost_scores;
  for (const auto& tp : partitions) {
    if (tp.topic == _options.partials_topic && _held_partials.erase(tp.partition) > 0)
      lost_partials.insert(tp.partition);
    if (tp.topic.ends_with(t::kScores)) lost_scores.insert(tp.partition);
  }
  // The runner committed no offset of what the matcher holds: the new owner reads it again.
  if (_matcher) {
    _matcher->forget_scores(lost_scores);
    _matcher->forget_events(lost);
  }
  if (!lost_partials.empty()) {
    const int32_t n = std::max(_options.partials_partitions, 1);
    _engine.forget_combined([&](std::string_view aggregate, std::string_view group) {
      return lost_partials.contains(
          log::partition_for_key(aggregate::partial_group_key(aggregate, group), n));
    });
  }
  // Embedded, every event is of source 0 whatever its partition: the one engine keeps it (as its cars).
  for (const int32_t p : lost) {
    if (!_options.changelog) break;
    _engine.forget_source(p);
    _changed_sources.erase(p);
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
