#include "mqtt/subscriber.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace fleettwin::mqtt {

Subscriber::Subscriber(SubscriberOptions options, MessageCallback on_message)
    : _options(std::move(options)),
      _on_message(std::move(on_message)),
      _decoder(_options.connect.version, _options.max_packet_size) {}

Subscriber::~Subscriber() { close(); }

bool Subscriber::start(Clock::time_point now) {
  close();
  _error.clear();
  _out.clear();
  _out_pos = 0;
  _decoder.reset();
  _unacked.clear();
  _connack = {};
  _suback = {};
  _ping_outstanding = false;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const auto port = std::to_string(_options.port);
  if (int rc = ::getaddrinfo(_options.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    fail("resolve " + _options.host + ": " + gai_strerror(rc));
    return false;
  }
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
  if (fd < 0) {
    ::freeaddrinfo(res);
    fail(std::string("socket: ") + std::strerror(errno));
    return false;
  }
  int one = 1;
  // PUBACKs and PINGREQs are tiny and latency-bound; Nagle would hold them behind the previous segment's ACK.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  const int err = errno;
  ::freeaddrinfo(res);
  _fd = fd;
  if (rc != 0 && err != EINPROGRESS) {
    fail("connect " + _options.host + ":" + port + ": " + std::strerror(err));
    return false;
  }
  _state = rc == 0 ? State::awaiting_connack : State::connecting;
  _last_received = now;
  queue(Encoder::connect(_options.connect));
  _last_sent = now;
  if (_state == State::awaiting_connack) flush();
  return _state != State::failed;
}

void Subscriber::fail(std::string why) {
  if (_error.empty()) _error = std::move(why);
  if (_fd >= 0) ::close(_fd);
  _fd = -1;
  _state = State::failed;
}

void Subscriber::close() {
  if (_fd >= 0) ::close(_fd);
  _fd = -1;
  if (_state != State::failed && _state != State::idle) _state = State::closed;
}

void Subscriber::disconnect() {
  if (_fd < 0) return;
  if (_state != State::connecting) {
    queue(Encoder::disconnect(_options.connect.version));
    flush();
  }
  close();
}

std::chrono::seconds Subscriber::keepalive() const {
  return std::chrono::seconds(_connack.server_keepalive_s.value_or(_options.connect.keepalive_s));
}

void Subscriber::queue(const std::string& bytes) {
  if (_fd < 0) return;
  if (_out.size() - _out_pos + bytes.size() > _options.max_write_buffer) {
    fail("write buffer full: the broker is not reading");
    return;
  }
  _out += bytes;
}

void Subscriber::flush() {
  while (_fd >= 0 && _state != State::connecting && _out_pos < _out.size()) {
    const ssize_t n = ::send(_fd, _out.data() + _out_pos, _out.size() - _out_pos, MSG_NOSIGNAL);
    if (n > 0) {
      _out_pos += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    fail(std::string("send: ") + std::strerror(errno));
    return;
  }
  if (_out_pos == _out.size()) {
    _out.clear();
    _out_pos = 0;
  }
}

void Subscriber::on_writable(Clock::time_point) {
  if (_fd < 0) return;
  if (_state == State::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return;
    if (err != 0) {
      fail("connect " + _options.host + ":" + std::to_string(_options.port) + ": " + std::strerror(err));
      return;
    }
    _state = State::awaiting_connack;
  }
  flush();
}

void Subscriber::on_readable(Clock::time_point now) {
  if (_fd < 0) return;
  if (_state == State::connecting) {
    // Readable before writable means the connect failed (or the broker already spoke); on_writable decides.
    on_writable(now);
    if (_fd < 0 || _state == State::connecting) return;
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(_fd, buf, sizeof buf, 0);
    if (n == 0) {
      fail("connection closed by the broker");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail(std::string("recv: ") + std::strerror(errno));
      return;
    }
    _last_received = now;
    _decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    Packet p;
    for (;;) {
      const auto st = _decoder.next(p);
      if (st == Decoder::Status::need_more) break;
      if (st == Decoder::Status::error) {
        fail("protocol error: " + _decoder.error());
        return;
      }
      handle(p, now);
      if (_fd < 0) return;  // failed, or the callback closed us
    }
  }
  flush();
}

void Subscriber::handle(Packet& p, Clock::time_point) {
  if (auto* c = std::get_if<Connack>(&p)) {
    if (_state != State::awaiting_connack) return fail("unexpected CONNACK");
    _connack = *c;
    if (c->reason_code != 0) return fail("connection refused, reason code " + std::to_string(c->reason_code));
    if (_options.subscriptions.empty()) {
      _state = State::ready;
    } else {
      _state = State::subscribing;
      queue(Encoder::subscribe(_options.connect.version, _subscribe_id, _options.subscriptions));
    }
  } else if (auto* s = std::get_if<Suback>(&p)) {
    if (_state != State::subscribing || s->packet_id != _subscribe_id) return fail("unexpected SUBACK");
    if (s->reason_codes.size() != _options.subscriptions.size()) return fail("SUBACK count mismatch");
    _suback = *s;
    for (std::size_t i = 0; i < s->reason_codes.size(); ++i) {
      if (s->reason_codes[i] >= 0x80) {
        return fail("subscription to " + _options.subscriptions[i].filter + " refused, reason code " +
                    std::to_string(s->reason_codes[i]));
      }
    }
    _state = State::ready;
  } else if (auto* m = std::get_if<Publish>(&p)) {
    // A persistent session's queued messages may arrive right after CONNACK, before our SUBACK.
    if (_state != State::subscribing && _state != State::ready) return fail("PUBLISH before CONNACK");
    if (m->qos > 1) return fail("QoS 2 PUBLISH; we subscribe with QoS <= 1");
    if (m->qos == 1) _unacked.insert(m->packet_id);
    if (_on_message) _on_message(m->topic, m->payload, m->qos, m->packet_id);
  } else if (std::holds_alternative<Pingresp>(p)) {
    _ping_outstanding = false;
    ++_pongs_received;
  } else if (auto* d = std::get_if<Disconnect>(&p)) {
    fail("broker sent DISCONNECT, reason code " + std::to_string(d->reason_code));
  }
  // PUBACK: we never publish, so there is nothing to match it to; ignore rather than drop the session.
}

bool Subscriber::ack(std::uint16_t packet_id) {
  if (_fd < 0 || _unacked.erase(packet_id) == 0) return false;
  queue(Encoder::puback(_options.connect.version, packet_id));
  _last_sent = Clock::now();
  flush();
  return _fd >= 0;
}

void Subscriber::tick(Clock::time_point now) {
  if (_fd < 0) return;
  const auto ka = keepalive();
  if (ka.count() == 0) return;
  if (_state == State::connecting || _state == State::awaiting_connack) {
    if (now - _last_sent >= ka) fail("no CONNACK within the keepalive interval");
    return;
  }
  if (_ping_outstanding) {
    if (now - _last_received >= ka + ka / 2) fail("no PINGRESP within 1.5 keepalive intervals");
    return;
  }
  if (now - _last_sent >= ka) {
    queue(Encoder::pingreq());
    _last_sent = now;
    _ping_outstanding = true;
    _last_received = now;  // measure the PINGRESP deadline from the ping
    ++_pings_sent;
    flush();
  }
}

}  // namespace fleettwin::mqtt
