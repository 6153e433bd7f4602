#include "stages/aggregate/status_matcher.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/topics.h"

namespace fleettwin::stages {

namespace t = core::topics;

std::string StatusMatcher::site_of(const log::Record& r) const {
  // Central (--sites): the runner renamed `<site>.<topic>` to `<topic>` and named the site in a header (after
  // dropping any the record brought: strip_site_topics).
  const auto site = _sites ? r.header(t::kHeaderSite) : std::nullopt;
  return site ? std::string(*site) : std::string();
}

StatusMatcher::StreamKey StatusMatcher::key_of(const log::Record& r) const {
  // A site's telemetry pairs with the same site's scores, of the same partition of the site's (the uplink's
  // header; none from MirrorMaker 2, which keeps the site's partitions). The header is the site's word: a
  // value that is no partition number (log.partitions is at most 4,096) is taken as none, so a site's
  // records make at most that many streams per partition.
  std::string site = site_of(r);
  if (site.empty()) return {std::string(), r.partition, std::string()};
  std::string site_partition;
  if (const auto h = r.header(t::kHeaderSitePartition)) {
    int32_t n = -1;
    const auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), n);
    if (ec == std::errc() && end == h->data() + h->size() && n >= 0 && n < 4096)
      site_partition = std::to_string(n);
  }
  return {std::move(site), r.partition, std::move(site_partition)};
}

std::size_t StatusMatcher::bytes_of(const Event& e) {
  std::size_t headers = 0;
  for (const auto& h : e.record.headers) headers += h.key.size() + h.value.size() + 64;
  // The record's strings and the decoded event (its car id and its signals), plus the deque's slot.
  return sizeof(Event) + e.record.topic.size() + e.record.key.size() + e.record.value.size() + headers +
         e.t.car.size() + e.t.values.size() * sizeof(e.t.values[0]) + 64;
}

bool StatusMatcher::stale(const Score& sc) const {
  const auto it = _evicted_upto.find(sc.car);
  return it != _evicted_upto.end() && sc.seq <= it->second;
}

void StatusMatcher::add_event(const log::Record& r, const core::Telemetry& tel) {
  Stream& s = _streams[key_of(r)];
  // The runner commits a site's copy under its own name: the header says which (see key_of).
  if (s.event_topic.empty()) {
    const auto site = site_of(r);
    s.event_topic = site.empty() ? r.topic : site + "." + r.topic;
  }
  s.next_event = std::max(s.next_event, r.offset + 1);
  s.events.push_back({r, tel});
  _bytes += bytes_of(s.events.back());
  ++_events;
  ++_per_car[tel.car];
  match(s);
  if (const auto c = _per_car.find(tel.car); c != _per_car.end() && c->second > _limits.per_car)
    evict_oldest_of_car(s, tel.car);
  while (_events + _scores > _limits.total) {
    if (!s.events.empty()) {
      _evicted_upto[s.events.front().t.car] = s.events.front().t.seq;
      ++_evicted;
      release_front(s, core::HealthStatus::kUnknown);
    } else if (!s.scores.empty()) {
      s.scores.pop_front();
      --_scores;
    } else {
      break;  // the others' records: this stream holds nothing more to give up
    }
  }
}

void StatusMatcher::add_score(const log::Record& r, const std::string& car, int64_t seq,
                              core::HealthStatus status) {
  Stream& s = _streams[key_of(r)];
  if (s.score_topic.empty()) {
    const auto site = site_of(r);
    s.score_topic = site.empty() ? r.topic : site + "." + r.topic;
  }
  s.next_score = std::max(s.next_score, r.offset + 1);
  Score sc{car, seq, status, r.offset};
  if (stale(sc)) return;
  s.scores.push_back(std::move(sc));
  ++_scores;
  match(s);
  // Scores ahead of their events: dropping the oldest makes its event `unknown` (the next score is a later
  // event's), which is what the bound promises.
  while (_scores > _limits.total && !s.scores.empty()) {
    s.scores.pop_front();
    --_scores;
  }
}

void StatusMatcher::match(Stream& s) {
  while (!s.events.empty() && !s.scores.empty()) {
    const Score& sc = s.scores.front();
    if (stale(sc)) {
      s.scores.pop_front();
      --_scores;
      continue;
    }
    const Event& e = s.events.front();
    if (e.t.car == sc.car && e.t.seq == sc.seq) {
      const auto status = sc.status;
      s.scores.pop_front();
      --_scores;
      release_front(s, status);
    } else {
      // The head score is a later event's: the score stage writes in the order it reads, so the head event's
      // score would have come first. It has none.
      release_front(s, core::HealthStatus::kUnknown);
    }
  }
}

void StatusMatcher::release_front(Stream& s, core::HealthStatus status) {
  Event e = std::move(s.events.front());
  s.events.pop_front();
  _bytes -= std::min(_bytes, bytes_of(e));
  --_events;
  if (auto it = _per_car.find(e.t.car); it != _per_car.end() && --it->second == 0) _per_car.erase(it);
  _release(e.record, e.t, status);
}

void StatusMatcher::evict_oldest_of_car(Stream& s, const std::string& car) {
  const auto it =
      std::find_if(s.events.begin(), s.events.end(), [&](const Event& e) { return e.t.car == car; });
  if (it == s.events.end()) return;
  // Out of its partition's order, but in its car's: the engine reads a car's events by seq.
  Event e = std::move(*it);
  s.events.erase(it);
  _bytes -= std::min(_bytes, bytes_of(e));
  --_events;
  if (auto c = _per_car.find(car); c != _per_car.end() && --c->second == 0) _per_car.erase(c);
  auto& upto = _evicted_upto[car];
  upto = std::max(upto, e.t.seq);
  ++_evicted;
  _release(e.record, e.t, core::HealthStatus::kUnknown);
}

void StatusMatcher::limit_commit(log::Offsets& next) const {
  // Per partition read: up to the first record still held, or all that was read when none is. Also for a
  // partition this batch did not read: a batch of scores that releases held events moves the telemetry's
  // commit on (else it stayed at the first event once held until more telemetry came, and a kill then read
  // every event since again). The topics are the ones the runner reads (a site's copy under its own name);
  // under --sites a partition holds a stream per site partition: the first held of any of them, else the
  // furthest any of them read.
  struct Bound {
    int64_t held = std::numeric_limits<int64_t>::max();
    int64_t read = -1;
  };
  std::map<log::TopicPartition, Bound> bounds;
  auto note = [&bounds](const std::string& topic, int32_t partition, bool held, int64_t at) {
    if (topic.empty() || at < 0) return;
    Bound& b = bounds[{topic, partition}];
    if (held)
      b.held = std::min(b.held, at);
    else
      b.read = std::max(b.read, at);
  };
  for (const auto& [key, s] : _streams) {
    const int32_t partition = std::get<1>(key);
    note(s.event_topic, partition, !s.events.empty(),
         s.events.empty() ? s.next_event : s.events.front().record.offset);
    note(s.score_topic, partition, !s.scores.empty(),
         s.scores.empty() ? s.next_score : s.scores.front().offset);
  }
  for (const auto& [tp, b] : bounds) {
    const int64_t upto = b.held != std::numeric_limits<int64_t>::max() ? b.held : b.read;
    if (upto < 0) continue;
    const auto [it, fresh] = next.try_emplace(tp, upto);
    if (!fresh) it->second = std::min(it->second, upto);
  }
}

void StatusMatcher::forget_events(const std::set<int32_t>& partitions) {
  for (auto it = _streams.begin(); it != _streams.end();) {
    if (!partitions.contains(std::get<1>(it->first))) {
      ++it;
      continue;
    }
    for (const auto& e : it->second.events) {
      _bytes -= std::min(_bytes, bytes_of(e));
      if (auto c = _per_car.find(e.t.car); c != _per_car.end() && --c->second == 0) _per_car.erase(c);
    }
    _events -= it->second.events.size();
    _scores -= it->second.scores.size();
    it = _streams.erase(it);
  }
}

void StatusMatcher::forget_scores(const std::set<int32_t>& partitions) {
  for (auto& [key, s] : _streams) {
    if (!partitions.contains(std::get<1>(key))) continue;
    _scores -= s.scores.size();
    s.scores.clear();
    s.next_score = -1;  // its new owner commits it now
  }
}

}  // namespace fleettwin::stages
