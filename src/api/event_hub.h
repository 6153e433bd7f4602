#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace fleettwin::api {

/// One live-stream subscriber's queue of pre-formatted SSE frames. Bounded in bytes: when the client reads
/// slower than events arrive and the queue is full, the subscription is closed (the client reconnects and
/// reloads its state) instead of growing memory or slowing the publisher. Pushed by the hub's publisher
/// thread, popped by the HTTP worker thread that serves this client.
class Subscription {
 public:
  explicit Subscription(std::size_t capacity_bytes, std::string owner = {})
      : _capacity(capacity_bytes), _owner(std::move(owner)) {}

  /// Next frame, waiting at most `timeout`; nullopt on timeout or when closed (check closed()).
  std::optional<std::string> pop(std::chrono::milliseconds timeout);
  bool closed() const;
  void close();

 private:
  friend class EventHub;
  /// False (and closes the subscription) when the queue is full.
  bool push(const std::string& frame);

  const std::size_t _capacity;
  const std::string _owner;  ///< who subscribed (the API token), for the per-owner limit
  mutable std::mutex _mu;
  std::condition_variable _cv;
  std::deque<std::string> _frames;
  std::size_t _bytes = 0;  // queued frame bytes, at most _capacity
  bool _closed = false;
};

/// Fans server-sent events out to every live-stream client. publish() formats the frame once and copies it
/// into each subscriber's bounded queue; any thread may publish or subscribe.
class EventHub {
 public:
  EventHub(std::size_t max_subscribers, std::size_t queue_bytes,
           std::size_t max_per_owner = static_cast<std::size_t>(-1))
      : _max_subscribers(max_subscribers), _queue_bytes(queue_bytes), _max_per_owner(max_per_owner) {}

  /// Why subscribe() refused: every slot is taken, or the owner holds its share of them already.
  enum class Refusal : uint8_t { kNone, kFull, kOwnerFull };
  /// A new subscription of `owner`, or nullptr (with `why` set when given) when `max_subscribers` are
  /// connected or `owner` already holds `max_per_owner`.
  std::shared_ptr<Subscription> subscribe(const std::string& owner = {}, Refusal* why = nullptr);
  /// Sends `event` with JSON `data` to every subscriber; drops (closes) the ones whose queue is full.
  void publish(const std::string& event, const std::string& data);
  /// Closes every subscription (server stop) so their workers return.
  void close_all();

  std::size_t subscribers() const;
  uint64_t dropped() const;          ///< subscriptions closed because their client fell behind
  uint64_t published() const;        ///< events published
  std::size_t queued_bytes() const;  ///< frame bytes waiting in every subscriber's queue

 private:
  const std::size_t _max_subscribers, _queue_bytes, _max_per_owner;
  mutable std::mutex _mu;
  std::vector<std::shared_ptr<Subscription>> _subs;
  uint64_t _dropped = 0, _published = 0, _next_id = 1;
};

}  // namespace fleettwin::api
