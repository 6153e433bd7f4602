#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "core/telemetry.h"
#include "core/twin.h"
#include "log/log.h"

namespace fleettwin::stages {

/// Gives each telemetry event the health status its own score gave it (core::score_status of its record on
/// fleet.scores), for the aggregate stage's definitions grouped by `attribute: status`. Used by the aggregate
/// stage on its runner's thread only.
///
/// The score stage reads a partition of fleet.telemetry in order and writes the scores of the events it
/// scores in that order, keyed by car, to the same partition number of fleet.scores (equally partitioned):
/// per partition the scores are a subsequence of the events. So the matcher keeps, per partition (and edge
/// site), the events read and not yet matched, and the scores read ahead of their event, and walks both
/// heads: a score that is the head event's makes it that status; a score of a later event proves the head
/// event will never be scored (the score stage's warm-up, an event it fell behind on) and makes it `unknown`.
/// Central with --sites: a site's copies are partitioned by central's hash, not the site's, so a stream is a
/// site's partition within a central partition (core::topics::kHeaderSitePartition, from fleettwin's
/// uplink): the order the site's score stage read and wrote in holds there, not across its partitions.
/// The result for each event is its own score's status, or `unknown` when it has none, whatever the
/// interleaving of the two topics. Only the bounds make a choice that depends on timing: past `per_car`
/// held events of a car, or `total` held in all, the oldest one (of that car, of that partition) goes out
/// `unknown` at once; its score, should it come, is then dropped. Events still held when the stage stops
/// are not counted: their offsets were not committed (limit_commit), and they are read again.
class StatusMatcher {
 public:
  struct Limits {
    std::size_t per_car = 256;
    std::size_t total = 200'000;
  };
  /// Called with each event, in the order of its partition, once its status is known.
  using Release = std::function<void(const log::Record&, const core::Telemetry&, core::HealthStatus)>;

  /// `sites`: central with --sites, where records name their site and site partition in headers (key_of);
  /// otherwise those headers, which only a foreign producer could have written, are not read.
  StatusMatcher(Limits limits, Release release, bool sites = false)
      : _limits(limits), _release(std::move(release)), _sites(sites) {}
  /// A telemetry event read (decoded into `t`).
  void add_event(const log::Record& r, const core::Telemetry& t);
  /// A score read from fleet.scores (or a site's copy): its car, the seq of its event, its status.
  void add_score(const log::Record& r, const std::string& car, int64_t seq, core::HealthStatus status);
  /// Sets `next` (the offsets the runner would commit after a batch) for each partition this matcher has
  /// read: at the first record still held, so a kill and restart reads every held record again, or one past
  /// the last record read when none is held (a partition the batch did not read included: a batch of
  /// scores releases telemetry events).
  void limit_commit(log::Offsets& next) const;
  /// Partitions of fleet.telemetry taken away: what was held from them (and their scores) is dropped; the
  /// new owner reads it again from the committed offsets.
  void forget_events(const std::set<int32_t>& partitions);
  /// Partitions of fleet.scores taken away: the scores held from them are dropped.
  void forget_scores(const std::set<int32_t>& partitions);
  std::size_t held_events() const { return _events; }
  std::size_t held_scores() const { return _scores; }
  /// Bytes held, about (records and decoded events).
  std::size_t memory_bytes() const { return _bytes; }
  /// Events that went out `unknown` because a bound was reached.
  int64_t evicted() const { return _evicted; }

 private:
  struct Event {
    log::Record record;
    core::Telemetry t;
  };
  struct Score {
    std::string car;
    int64_t seq = 0;
    core::HealthStatus status = core::HealthStatus::kUnknown;
    int64_t offset = 0;
  };
  struct Stream {
    std::deque<Event> events;
    std::deque<Score> scores;
    std::string event_topic;  ///< the topic as the runner commits it (a site's copy under --sites)
    std::string score_topic;
    int64_t next_event = -1;  ///< one past the last event read; -1: none yet
    int64_t next_score = -1;
  };
  /// (edge site or "", partition, the site's partition or "": core::topics::kHeaderSitePartition)
  using StreamKey = std::tuple<std::string, int32_t, std::string>;

  StreamKey key_of(const log::Record& r) const;
  /// The site a record's stream is of ("" but on central with --sites).
  std::string site_of(const log::Record& r) const;
  static std::size_t bytes_of(const Event& e);
  void match(Stream& s);
  void release_front(Stream& s, core::HealthStatus status);
  void evict_oldest_of_car(Stream& s, const std::string& car);
  bool stale(const Score& sc) const;

  Limits _limits;
  Release _release;
  bool _sites = false;
  std::map<StreamKey, Stream> _streams;
  std::unordered_map<std::string, std::size_t> _per_car;  ///< held events per car
  /// Per car, the highest seq that went out `unknown` at a bound: its score, if it comes, is not the head's.
  std::unordered_map<std::string, int64_t> _evicted_upto;
  std::size_t _events = 0;
  std::size_t _scores = 0;
  std::size_t _bytes = 0;
  int64_t _evicted = 0;
};

}  // namespace fleettwin::stages
