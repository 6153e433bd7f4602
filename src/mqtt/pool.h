#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "mqtt/client.h"

namespace fleettwin::mqtt {

struct PoolOptions {
  /// Connections being set up at once (TCP connect to SUBACK). Brokers accept from a bounded listen backlog;
  /// a burst of 16,000 SYNs would only time out and retry.
  std::size_t max_connecting = 256;
  std::chrono::milliseconds backoff_min{250};  ///< first reconnect delay; doubles per failure
  std::chrono::milliseconds backoff_max{30000};
  std::uint64_t seed = 1;  ///< jitter
};

/// Counters of a pool, for progress lines and metrics. Plain value.
struct PoolStats {
  std::size_t clients = 0;
  std::size_t connected = 0;   ///< ready now
  std::size_t outgoing = 0;    ///< QoS 1 messages kept for the broker's PUBACK, over all clients
  std::uint64_t connects = 0;  ///< successful connections (first ones and reconnects)
  std::uint64_t reconnects = 0;
  std::uint64_t failures = 0;  ///< connections that failed or dropped
  std::uint64_t pubacks =
      0;  ///< PUBACKs of messages the broker had a subscriber for (reason other than 0x10)
  /// PUBACKs with reason 0x10 (no matching subscribers): the broker took the message and had nobody to give
  /// it to, e.g. before the bridge's first subscription, or after a broker restart before the bridge has
  /// subscribed again. The message is gone, unless its client has resend_unrouted: then it is sent again
  /// (and counted here again each time it finds nobody).
  std::uint64_t unrouted = 0;
};

/// Thousands of MQTT clients driven from one thread with epoll: one descriptor per client, non-blocking
/// connects paced by max_connecting, reconnects with exponential backoff and full jitter so a broker restart
/// does not bring every car back in the same millisecond. The simulator's cars and the bridge's broker
/// connections use it. Not thread-safe: the owning thread calls everything, callbacks run on it.
class Pool {
 public:
  using Index = std::uint32_t;
  using MessageCallback = std::function<void(Index, std::string_view topic, std::string_view payload,
                                             std::uint8_t qos, std::uint16_t packet_id)>;

  explicit Pool(PoolOptions options = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  void on_message(MessageCallback cb) { _on_message = std::move(cb); }
  using OversizeCallback = std::function<void(Index, std::string_view topic, std::string_view prefix,
                                              std::uint8_t qos, std::uint16_t packet_id, std::size_t size)>;
  /// PUBLISH packets over a client's max_packet_size (Client::on_oversize); set before add(). Without it such
  /// a packet fails its connection.
  void on_oversize(OversizeCallback cb) { _on_oversize = std::move(cb); }
  /// Each time client `i` becomes ready (after CONNACK and SUBACK).
  void on_ready(std::function<void(Index)> cb) { _on_ready = std::move(cb); }
  /// Each PUBACK of a QoS 1 message the client published.
  void on_puback(std::function<void(Index, std::uint16_t)> cb) { _on_puback = std::move(cb); }

  /// Adds a client; it connects as soon as a connecting slot is free.
  Index add(ClientOptions options);
  Client& client(Index i) { return *_slots[i].client; }
  std::size_t size() const { return _slots.size(); }

  /// Publishes through client `i` (see Client::publish).
  bool publish(Index i, std::string_view topic, std::string_view payload, std::uint8_t qos);
  /// Sends the PUBACK of a message client `i` received.
  bool ack(Index i, std::uint16_t packet_id);
  /// Drops client `i`'s connection as a crash would; it reconnects after its backoff.
  void drop(Index i);

  /// Waits up to `timeout` for socket events, handles them, starts due connects, ticks keepalives.
  void run_once(std::chrono::milliseconds timeout);
  /// DISCONNECT every client (sessions stay on the brokers).
  void disconnect_all();

  PoolStats stats() const;

 private:
  struct Slot {
    std::unique_ptr<Client> client;
    int registered_fd = -1;
    std::uint32_t events = 0;
    enum class Phase : std::uint8_t { kWaiting, kConnecting, kReady } phase = Phase::kWaiting;
    bool ever_ready = false;
    int failures_in_row = 0;
    Client::Clock::time_point next_attempt{};
  };
  void sync(Index i, Client::Clock::time_point now);
  void schedule_reconnect(Index i, Client::Clock::time_point now);
  void start_due(Client::Clock::time_point now);

  PoolOptions _options;
  int _epoll = -1;
  std::vector<Slot> _slots;
  std::deque<Index> _connect_queue;  // due order is approximately FIFO; entries not yet due are rotated
  std::size_t _connecting = 0;
  std::size_t _connected = 0;
  std::uint64_t _rng;
  Client::Clock::time_point _last_tick{};
  MessageCallback _on_message;
  OversizeCallback _on_oversize;
  std::function<void(Index)> _on_ready;
  std::function<void(Index, std::uint16_t)> _on_puback;
  PoolStats _stats;
};

}  // namespace fleettwin::mqtt
