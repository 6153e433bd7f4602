#include "api/event_hub.h"

#include <algorithm>

namespace fleettwin::api {

std::optional<std::string> Subscription::pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(_mu);
  _cv.wait_for(lock, timeout, [&] { return _closed || !_frames.empty(); });
  if (_frames.empty() || _closed) return std::nullopt;
  std::string frame = std::move(_frames.front());
  _frames.pop_front();
  _bytes -= frame.size();
  return frame;
}

bool Subscription::closed() const {
  std::lock_guard lock(_mu);
  return _closed;
}

void Subscription::close() {
  {
    std::lock_guard lock(_mu);
    _closed = true;
    _frames.clear();
    _bytes = 0;
  }
  _cv.notify_all();
}

bool Subscription::push(const std::string& frame) {
  {
    std::lock_guard lock(_mu);
    if (_closed) return false;
    if (_bytes + frame.size() > _capacity) {
      _closed = true;
      _frames.clear();
      _bytes = 0;
    } else {
      _frames.push_back(frame);
      _bytes += frame.size();
    }
  }
  _cv.notify_one();
  return !closed();
}

std::shared_ptr<Subscription> EventHub::subscribe(const std::string& owner, Refusal* why) {
  std::lock_guard lock(_mu);
  // Subscriptions whose client went away are pruned here and on publish.
  std::erase_if(_subs, [](const auto& s) { return s->closed(); });
  Refusal refusal = Refusal::kNone;
  if (_subs.size() >= _max_subscribers) {
    refusal = Refusal::kFull;
  } else if (static_cast<std::size_t>(std::count_if(_subs.begin(), _subs.end(), [&](const auto& s) {
               return s->_owner == owner;
             })) >= _max_per_owner) {
    refusal = Refusal::kOwnerFull;
  }
  if (why) *why = refusal;
  if (refusal != Refusal::kNone) return nullptr;
  return _subs.emplace_back(std::make_shared<Subscription>(_queue_bytes, owner));
}

void EventHub::publish(const std::string& event, const std::string& data) {
  std::lock_guard lock(_mu);
  const std::string frame =
      "id: " + std::to_string(_next_id++) + "\nevent: " + event + "\ndata: " + data + "\n\n";
  ++_published;
  std::erase_if(_subs, [&](const auto& s) {
    if (s->closed()) return true;
    if (!s->push(frame)) {
      ++_dropped;
      return true;
    }
    return false;
  });
}

void EventHub::close_all() {
  std::lock_guard lock(_mu);
  for (auto& s : _subs) s->close();
  _subs.clear();
}

std::size_t EventHub::subscribers() const {
  std::lock_guard lock(_mu);
  return _subs.size();
}

uint64_t EventHub::dropped() const {
  std::lock_guard lock(_mu);
  return _dropped;
}

std::size_t EventHub::queued_bytes() const {
  std::lock_guard lock(_mu);
  std::size_t total = 0;
  for (const auto& s : _subs) {
    std::lock_guard sub_lock(s->_mu);
    total += s->_bytes;
  }
  return total;
}

uint64_t EventHub::published() const {
  std::lock_guard lock(_mu);
  return _published;
}

}  // namespace fleettwin::api
