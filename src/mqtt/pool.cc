#include "mqtt/pool.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fleettwin::mqtt {

namespace {

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

Pool::Pool(PoolOptions options) : _options(options), _rng(options.seed) {
  _epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (_epoll < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
}

Pool::~Pool() {
  _slots.clear();  // closes every socket
  if (_epoll >= 0) ::close(_epoll);
}

Pool::Index Pool::add(ClientOptions options) {
  const auto i = static_cast<Index>(_slots.size());
  Slot s;
  s.client = std::make_unique<Client>(
      std::move(options),
      [this, i](std::string_view topic, std::string_view payload, std::uint8_t qos, std::uint16_t packet_id) {
        if (_on_message) _on_message(i, topic, payload, qos, packet_id);
      });
  if (_on_oversize)
    s.client->on_oversize(
        [this, i](std::string_view topic, std::string_view prefix, std::uint8_t qos, std::uint16_t packet_id,
                  std::size_t size) { _on_oversize(i, topic, prefix, qos, packet_id, size); });
  s.client->on_puback([this, i](std::uint16_t id, std::uint8_t reason) {
    // Reason 0x10 (no matching subscribers): nobody got it. Counted apart from the PUBACKs of delivered
    // messages; a client with resend_unrouted sends it again.
    if (reason == 0x10)
      ++_stats.unrouted;
    else
      ++_stats.pubacks;
    if (_on_puback) _on_puback(i, id);
  });
  _slots.push_back(std::move(s));
  _connect_queue.push_back(i);
  return i;
}

bool Pool::publish(Index i, std::string_view topic, std::string_view payload, std::uint8_t qos) {
  const bool ok = _slots[i].client->publish(topic, payload, qos);
  sync(i, Client::Clock::now());
  return ok;
}

bool Pool::ack(Index i, std::uint16_t packet_id) {
  const bool ok = _slots[i].client->ack(packet_id);
  sync(i, Client::Clock::now());
  return ok;
}

void Pool::drop(Index i) {
  _slots[i].client->close();
  sync(i, Client::Clock::now());
}

void Pool::schedule_reconnect(Index i, Client::Clock::time_point now) {
  Slot& s = _slots[i];
  ++_stats.failures;
  // Exponential backoff with full jitter: uniform in [0, min(max, min * 2^n)].
  const int n = std::min(s.failures_in_row++, 16);
  const auto cap = std::min<std::int64_t>(_options.backoff_max.count(), _options.backoff_min.count() << n);
  const auto delay = std::chrono::milliseconds(
      static_cast<std::int64_t>(splitmix(_rng) % static_cast<std::uint64_t>(std::max<std::int64_t>(cap, 1))));
  s.next_attempt = now + std::max(delay, _options.backoff_min / 4);
  _connect_queue.push_back(i);
}

void Pool::sync(Index i, Client::Clock::time_point now) {
  Slot& s = _slots[i];
  Client& c = *s.client;
  const int fd = c.fd();
  // A closed descriptor left the epoll set by itself; a new one (same number or not) must be added again.
  if (fd < 0) s.registered_fd = -1;
  const auto state = c.state();
  const bool dead = fd < 0 || state == Client::State::kFailed || state == Client::State::kClosed;
  if (dead) {
    if (s.phase == Slot::Phase::kConnecting) --_connecting;
    if (s.phase == Slot::Phase::kReady) --_connected;
    if (s.phase != Slot::Phase::kWaiting) {
      s.phase = Slot::Phase::kWaiting;
      schedule_reconnect(i, now);
    }
    return;
  }
  if (state == Client::State::kReady && s.phase != Slot::Phase::kReady) {
    if (s.phase == Slot::Phase::kConnecting) --_connecting;
    s.phase = Slot::Phase::kReady;
    ++_connected;
    ++_stats.connects;
    if (s.ever_ready) ++_stats.reconnects;
    s.ever_ready = true;
    s.failures_in_row = 0;
    if (_on_ready) _on_ready(i);
    if (c.fd() < 0) return sync(i, now);  // the callback's publish may have failed the connection
  }
  const std::uint32_t events = EPOLLIN | (c.wants_write() ? EPOLLOUT : 0u);
  if (s.registered_fd != fd) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = i;
    if (::epoll_ctl(_epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
      c.close();
      return sync(i, now);
    }
    s.registered_fd = fd;
    s.events = events;
  } else if (s.events != events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = i;
    ::epoll_ctl(_epoll, EPOLL_CTL_MOD, fd, &ev);
    s.events = events;
  }
}

void Pool::start_due(Client::Clock::time_point now) {
  // Entries not yet due go to the back; one pass over the queue at most.
  for (std::size_t n = _connect_queue.size(); n > 0 && _connecting < _options.max_connecting; --n) {
    const Index i = _connect_queue.front();
    _connect_queue.pop_front();
    Slot& s = _slots[i];
    if (s.next_attempt > now) {
      _connect_queue.push_back(i);
      continue;
    }
    s.phase = Slot::Phase::kConnecting;
    ++_connecting;
    s.client->start(now);
    sync(i, now);
  }
}

void Pool::run_once(std::chrono::milliseconds timeout) {
  epoll_event events[512];
  int n = ::epoll_wait(_epoll, events, 512, static_cast<int>(timeout.count()));
  if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
  const auto now = Client::Clock::now();
  for (int k = 0; k < n; ++k) {
    const Index i = events[k].data.u32;
    Client& c = *_slots[i].client;
    const auto ev = events[k].events;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) c.on_writable(now);
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) c.on_readable(now);
    sync(i, now);
  }
  start_due(now);
  // Keepalive and CONNACK timeouts: coarse, once per 500 ms over every client.
  if (now - _last_tick >= std::chrono::milliseconds(500)) {
    _last_tick = now;
    for (Index i = 0; i < _slots.size(); ++i) {
      if (_slots[i].phase == Slot::Phase::kWaiting) continue;
      _slots[i].client->tick(now);
      sync(i, now);
    }
  }
}

void Pool::disconnect_all() {
  const auto now = Client::Clock::now();
  for (Index i = 0; i < _slots.size(); ++i) {
    _slots[i].client->disconnect();
    Slot& s = _slots[i];
    if (s.phase == Slot::Phase::kConnecting) --_connecting;
    if (s.phase == Slot::Phase::kReady) --_connected;
    s.phase = Slot::Phase::kWaiting;
    s.registered_fd = -1;
    (void)now;
  }
  _connect_queue.clear();
}

PoolStats Pool::stats() const {
  PoolStats s = _stats;
  s.clients = _slots.size();
  s.connected = _connected;
  for (const auto& slot : _slots) s.outgoing += slot.client->outgoing();
  return s;
}

}  // namespace fleettwin::mqtt
