#include "log/memory/memory_log.h"

#include <algorithm>
#include <chrono>

#include "core/clock.h"

namespace fleettwin::log {

namespace {

/// Trims records every group has committed past. Caller holds t.mu.
void trim(MemoryLog::Topic& t, std::size_t p) {
  auto& part = t.partitions[p];
  int64_t min_committed = part.end();
  for (const auto& [group, offsets] : t.committed) min_committed = std::min(min_committed, offsets[p]);
  while (!part.records.empty() && part.base < min_committed) {
    part.records.pop_front();
    ++part.base;
  }
}

/// The oldest offset a group that must not lose records still needs (the partition's end when every group
/// may lag). Caller holds t.mu.
int64_t kept_from(const MemoryLog::Topic& t, std::size_t p) {
  int64_t from = t.partitions[p].end();
  for (const auto& [group, offsets] : t.committed)
    if (!t.may_lag.contains(group)) from = std::min(from, offsets[p]);
  return from;
}

/// A group allowed to lag that has not committed on a partition starts at the partition's oldest record now,
/// explicitly: records evicted past it later are then counted as skipped when it reads (a group with no
/// commit would otherwise start at whatever is oldest when it first reads, and not know what it missed).
/// Caller holds t.mu.
void start_lagging_group(MemoryLog::Topic& t, const std::string& group) {
  auto it = t.committed.find(group);
  if (it == t.committed.end() || !t.may_lag.contains(group)) return;
  for (std::size_t p = 0; p < it->second.size() && p < t.partitions.size(); ++p)
    if (it->second[p] < 0) it->second[p] = t.partitions[p].base;
}

/// Batches records per topic and appends them under one lock: a lock per record would cost more than the
/// record itself at the rates the embedded pipeline runs.
class MemoryProducer final : public Producer {
 public:
  explicit MemoryProducer(MemoryLog& log) : _log(log) {}
  ~MemoryProducer() override { flush(std::chrono::milliseconds(0)); }

  void send(OutRecord record, DeliveryCallback on_delivery) override {
    if (_log.closed()) throw LogError("log closed");
    if (record.timestamp_ms == 0) record.timestamp_ms = core::wall_clock_ms();
    auto& pending = _pending[record.topic];
    pending.records.push_back(std::move(record));
    pending.callbacks.push_back(std::move(on_delivery));
    if (pending.records.size() >= kBatch) append(pending);
  }

  int64_t flush(std::chrono::milliseconds) override {
    int64_t failed = 0;
    for (auto& [name, pending] : _pending) {
      try {
        append(pending);
      } catch (const LogError&) {
        failed += static_cast<int64_t>(pending.records.size());
        pending.records.clear();
        pending.callbacks.clear();
      }
    }
    return failed;
  }

 private:
  static constexpr std::size_t kBatch = 256;
  struct Pending {
    std::vector<OutRecord> records;
    std::vector<DeliveryCallback> callbacks;
  };

  void append(Pending& p) {
    if (p.records.empty()) return;
    auto& topic = _log.topic(p.records.front().topic);
    _log.append(topic, p.records, _offsets);
    for (std::size_t i = 0; i < p.records.size(); ++i)
      if (p.callbacks[i]) p.callbacks[i](p.records[i], _offsets[i], nullptr);
    p.records.clear();
    p.callbacks.clear();
  }

  MemoryLog& _log;
  std::map<std::string, Pending> _pending;
  std::vector<int64_t> _offsets;
};

}  // namespace

/// One member of a group. Its assignment is recomputed when the group's generation changes (a member joined
/// or left): partition numbers are dealt round-robin over the members in join order, the same number of every
/// topic to the same member (co-partitioned, as Kafka's range assignor does for topics of equal size), so a
/// stage reading several topics keyed by car sees all of a car's records. A partition changes hands only
/// once its previous owner has released it (its on_revoked ran), as in Kafka's cooperative protocol.
struct MemoryLog::Member {
  MemoryLog* log = nullptr;
  std::string group_name;
  std::vector<std::string> topics;
};

namespace {

class MemoryConsumer final : public Consumer {
 public:
  MemoryConsumer(MemoryLog& log, std::string group) : _log(log), _group(log.group(group)) {
    _member.log = &log;
    _member.group_name = std::move(group);
  }
  ~MemoryConsumer() override { close(); }

  void subscribe(const std::vector<std::string>& topics, RebalanceListener listener) override {
    _listener = std::move(listener);
    _member.topics = topics;
    for (const auto& name : topics) {
      auto& t = _log.topic(name);
      std::lock_guard lock(t.mu);
      t.waiters.push_back(&_waiter);
      // Registering the group pins unread records: from now on the topic only trims what it committed.
      auto [it, inserted] = t.committed.try_emplace(_member.group_name);
      if (inserted) it->second.assign(t.partitions.size(), -1);
      start_lagging_group(t, _member.group_name);
      _topics.push_back(&t);
    }
    std::lock_guard lock(_group.mu);
    _group.members.push_back(&_member);
    ++_group.generation;
    _joined = true;
  }

  std::vector<Record> poll(std::size_t max_records, std::chrono::milliseconds timeout) override {
    std::vector<Record> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      rebalance_if_needed();
      {
        std::lock_guard lock(_waiter.mu);
        _waiter.ready = false;
      }
      read(out, max_records);
      if (!out.empty() || _log.closed()) return out;
      std::unique_lock lock(_waiter.mu);
      if (!_waiter.cv.wait_until(lock, deadline, [&] { return _waiter.ready; })) return out;
    }
  }

  void commit(const Offsets& offsets) override {
    for (const auto& [tp, offset] : offsets) {
      auto& t = _log.topic(tp.topic);
      std::lock_guard lock(t.mu);
      auto& c = t.committed[_member.group_name];
      if (c.size() < t.partitions.size()) c.resize(t.partitions.size(), -1);
      c[tp.partition] = offset;
      t.space_cv.notify_all();
    }
  }

  void seek(const TopicPartition& tp, int64_t offset) override { _positions[tp] = offset; }

  int64_t lag() override {
    int64_t total = 0;
    for (const auto& tp : _assignment) {
      auto& t = _log.topic(tp.topic);
      std::lock_guard lock(t.mu);
      total += std::max<int64_t>(0, t.partitions[tp.partition].end() - position_locked(t, tp));
    }
    return total;
  }

  std::vector<TopicPartition> assignment() override { return _assignment; }
  int64_t skipped() const override { return _skipped; }

  void close() override {
    if (!_joined) return;
    _joined = false;
    for (auto* t : _topics) {
      std::lock_guard lock(t->mu);
      std::erase(t->waiters, &_waiter);
    }
    std::lock_guard lock(_group.mu);
    std::erase(_group.members, &_member);
    std::erase_if(_group.owners, [&](const auto& o) { return o.second == &_member; });
    ++_group.generation;
  }

 private:
  void rebalance_if_needed() {
    std::vector<TopicPartition> next;
    {
      std::lock_guard lock(_group.mu);
      if (_group.generation == _seen_generation && !_waiting) return;
      _seen_generation = _group.generation;
      _waiting = false;
      const auto& members = _group.members;
      const auto me = std::find(members.begin(), members.end(), &_member) - members.begin();
      const auto n = static_cast<int64_t>(members.size());
      std::vector<TopicPartition> all;
      for (const auto& m : members)
        for (const auto& name : m->topics) {
          auto& t = _log.topic(name);
          for (int32_t p = 0; p < static_cast<int32_t>(t.partitions.size()); ++p) all.push_back({name, p});
        }
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      for (const auto& tp : all) {
        if (tp.partition % n != me ||
            std::find(_member.topics.begin(), _member.topics.end(), tp.topic) == _member.topics.end())
          continue;
        // Still held by its previous owner, which has not seen the new generation yet: taken on a later poll.
        if (auto o = _group.owners.find(tp); o != _group.owners.end() && o->second != &_member) {
          _waiting = true;
          continue;
        }
        next.push_back(tp);
      }
    }
    std::vector<TopicPartition> revoked, assigned;
    for (const auto& tp : _assignment)
      if (std::find(next.begin(), next.end(), tp) == next.end()) revoked.push_back(tp);
    for (const auto& tp : next)
      if (std::find(_assignment.begin(), _assignment.end(), tp) == _assignment.end()) assigned.push_back(tp);
    if (!revoked.empty() && _listener.on_revoked) _listener.on_revoked(revoked);
    for (const auto& tp : revoked) _positions.erase(tp);
    _assignment = std::move(next);
    {
      std::lock_guard lock(_group.mu);
      for (const auto& tp : revoked) _group.owners.erase(tp);
      for (const auto& tp : assigned) _group.owners[tp] = &_member;
    }
    if (!assigned.empty() && _listener.on_assigned) _listener.on_assigned(assigned);
  }

  /// Read position: explicit (after a read or seek), else the group's commit, else the earliest record.
  int64_t position_locked(MemoryLog::Topic& t, const TopicPartition& tp) {
    auto it = _positions.find(tp);
    if (it != _positions.end()) return it->second;
    const auto& c = t.committed[_member.group_name];
    int64_t pos = c.size() > static_cast<std::size_t>(tp.partition) ? c[tp.partition] : -1;
    if (pos < 0) pos = t.partitions[tp.partition].base;
    return pos;
  }

  void read(std::vector<Record>& out, std::size_t max_records) {
    if (_assignment.empty()) return;
    const std::size_t n = _assignment.size();
    for (std::size_t k = 0; k < n && out.size() < max_records; ++k) {
      const auto& tp = _assignment[(_next + k) % n];
      auto& t = _log.topic(tp.topic);
      std::lock_guard lock(t.mu);
      auto& part = t.partitions[tp.partition];
      int64_t pos = position_locked(t, tp);
      if (pos < part.base) {  // evicted past this group (allowed to lag), or by retention: skip ahead
        _skipped += part.base - pos;
        pos = part.base;
      }
      for (; pos < part.end() && out.size() < max_records; ++pos) {
        const auto& s = part.records[pos - part.base];
        Record& r = out.emplace_back();
        r.topic = t.name;
        r.partition = tp.partition;
        r.offset = pos;
        r.key = s.key;
        r.value = s.value;
        r.headers = s.headers;
        r.timestamp_ms = s.timestamp_ms;
      }
      _positions[tp] = pos;
    }
    _next = (_next + 1) % n;
  }

  MemoryLog& _log;
  MemoryLog::Group& _group;
  MemoryLog::Member _member;
  MemoryLog::Waiter _waiter;
  RebalanceListener _listener;
  std::vector<MemoryLog::Topic*> _topics;
  std::vector<TopicPartition> _assignment;
  std::map<TopicPartition, int64_t> _positions;
  uint64_t _seen_generation = ~0ull;
  bool _waiting = false;  // a partition dealt to this member is still held by another
  std::size_t _next = 0;
  int64_t _skipped = 0;
  bool _joined = false;
};

}  // namespace

void MemoryLog::Waiter::notify() {
  {
    std::lock_guard lock(mu);
    ready = true;
  }
  cv.notify_one();
}

MemoryLog::MemoryLog(TopicConfig defaults) : _defaults(defaults) {}

MemoryLog::~MemoryLog() { close(); }

void MemoryLog::create_topic(const std::string& name, const TopicConfig& config) {
  std::lock_guard lock(_mu);
  if (_topics.count(name)) return;
  auto t = std::make_unique<Topic>();
  t->name = name;
  t->config = config;
  t->partitions.resize(std::max(1, config.partitions));
  _topics.emplace(name, std::move(t));
}

MemoryLog::Topic& MemoryLog::topic(const std::string& name) {
  {
    std::lock_guard lock(_mu);
    auto it = _topics.find(name);
    if (it != _topics.end()) return *it->second;
  }
  create_topic(name, _defaults);
  std::lock_guard lock(_mu);
  return *_topics.at(name);
}

MemoryLog::Group& MemoryLog::group(const std::string& name) {
  std::lock_guard lock(_mu);
  auto& g = _groups[name];
  if (!g) g = std::make_unique<Group>();
  return *g;
}

std::unique_ptr<Producer> MemoryLog::producer() { return std::make_unique<MemoryProducer>(*this); }

std::unique_ptr<Consumer> MemoryLog::consumer(const std::string& group) {
  return std::make_unique<MemoryConsumer>(*this, group);
}

std::vector<int64_t> MemoryLog::end_offsets(const std::string& name) {
  auto& t = topic(name);
  std::lock_guard lock(t.mu);
  std::vector<int64_t> out;
  out.reserve(t.partitions.size());
  for (const auto& p : t.partitions) out.push_back(p.end());
  return out;
}

int64_t MemoryLog::committed(const std::string& group, const TopicPartition& tp) {
  auto& t = topic(tp.topic);
  std::lock_guard lock(t.mu);
  auto it = t.committed.find(group);
  if (it == t.committed.end() || it->second.size() <= static_cast<std::size_t>(tp.partition)) return -1;
  return it->second[tp.partition];
}

std::vector<int64_t> MemoryLog::committed_offsets(const std::string& group, const std::string& name) {
  auto& t = topic(name);
  std::lock_guard lock(t.mu);
  std::vector<int64_t> out(t.partitions.size(), -1);
  if (auto it = t.committed.find(group); it != t.committed.end())
    for (std::size_t p = 0; p < out.size() && p < it->second.size(); ++p) out[p] = it->second[p];
  return out;
}

void MemoryLog::append(Topic& t, std::vector<OutRecord>& records, std::vector<int64_t>& offsets) {
  offsets.resize(records.size());
  {
    std::unique_lock lock(t.mu);
    const auto parts = static_cast<int32_t>(t.partitions.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      auto& r = records[i];
      const int32_t p = r.partition >= 0 ? r.partition % parts : partition_for_key(r.key, parts);
      r.partition = p;
      auto& part = t.partitions[p];
      if (static_cast<int64_t>(part.records.size()) >= t.config.capacity) make_room(t, p, lock);
      offsets[i] = part.end();
      // The key stays in `r` for delivery callbacks (short: one copy); value and headers move.
      part.records.push_back(Stored{r.key, std::move(r.value), std::move(r.headers), r.timestamp_ms});
    }
    for (auto* w : t.waiters) w->notify();
  }
}

void MemoryLog::make_room(Topic& t, std::size_t p, std::unique_lock<std::mutex>& lock) {
  auto& part = t.partitions[p];
  while (static_cast<int64_t>(part.records.size()) >= t.config.capacity) {
    if (t.committed.empty()) {  // nobody reads this topic: retention drops the oldest
      part.records.pop_front();
      ++part.base;
      _evicted.fetch_add(1);
      return;
    }
    trim(t, p);
    if (static_cast<int64_t>(part.records.size()) < t.config.capacity) return;
    if (part.base < kept_from(t, p)) {
      // Only groups allowed to lag still need the oldest record: it goes, and they skip it when they read.
      part.records.pop_front();
      ++part.base;
      _evicted_past_laggards.fetch_add(1);
      return;
    }
    if (_closed.load()) throw LogError("log closed");
    t.space_cv.wait_for(lock, std::chrono::milliseconds(50));
  }
}

void MemoryLog::allow_lag(const std::string& group, const std::string& name) {
  auto& t = topic(name);
  std::lock_guard lock(t.mu);
  t.may_lag.insert(group);
  start_lagging_group(t, group);
  t.space_cv.notify_all();  // a producer waiting for this group can go on
}

void MemoryLog::close() {
  _closed.store(true);
  std::lock_guard lock(_mu);
  for (auto& [name, t] : _topics) {
    std::lock_guard tl(t->mu);
    t->space_cv.notify_all();
    for (auto* w : t->waiters) w->notify();
  }
}

}  // namespace fleettwin::log
