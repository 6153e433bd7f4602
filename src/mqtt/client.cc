#include "mqtt/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace fleettwin::mqtt {

namespace {
/// PUBACK reason code (MQTT 5): the broker took the message and had no subscriber for it.
constexpr std::uint8_t kNoMatchingSubscribers = 0x10;
}  // namespace

Client::Client(ClientOptions options, MessageCallback on_message)
    : _options(std::move(options)),
      _on_message(std::move(on_message)),
      _decoder(_options.connect.version, _options.max_packet_size) {
  _options.max_outgoing = std::min<std::size_t>(_options.max_outgoing, 60000);
  if (!_options.tls.ca_file.empty()) _tls_ctx = tls_context(_options.tls);
}

Client::~Client() { close(); }

bool Client::start(Clock::time_point now) {
  close();
  _error.clear();
  _out.clear();
  _out_pos = 0;
  _decoder.reset();
  _unacked.clear();
  _in_flight = 0;
  for (auto& o : _outgoing) o.sent = false;
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
  _state = State::kConnecting;
  _last_received = now;
  queue(Encoder::connect(_options.connect));
  _last_sent = now;
  if (rc == 0) tcp_connected();
  return _state != State::kFailed;
}

void Client::tcp_connected() {
  if (!_tls_ctx) {
    _state = State::kAwaitingConnack;
    flush();
    return;
  }
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(_tls_ctx.get()));
  if (!ssl) return fail("TLS: SSL_new failed");
  _ssl = ssl;
  if (_options.tls.identity_per_connection)
    if (auto e = use_connection_identity(ssl, _options.tls); !e.empty()) return fail(e);
  SSL_set_fd(ssl, _fd);
  in6_addr ip{};
  const bool is_ip = ::inet_pton(AF_INET, _options.host.c_str(), &ip) == 1 ||
                     ::inet_pton(AF_INET6, _options.host.c_str(), &ip) == 1;
  if (!is_ip) SSL_set_tlsext_host_name(ssl, _options.host.c_str());  // SNI takes names only
  // The certificate must name the host we dialled (a DNS name or an IP address in subjectAltName).
  if (!_options.tls.insecure) {
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), _options.host.c_str());
    else
      SSL_set1_host(ssl, _options.host.c_str());
  }
  SSL_set_connect_state(ssl);
  _state = State::kTlsHandshake;
  tls_step();
}

void Client::tls_step() {
  SSL* ssl = static_cast<SSL*>(_ssl);
  const int rc = SSL_do_handshake(ssl);
  _tls_wants_write = false;
  if (rc == 1) {
    _state = State::kAwaitingConnack;
    flush();
    return;
  }
  const int err = SSL_get_error(ssl, rc);
  if (err == SSL_ERROR_WANT_READ) return;
  if (err == SSL_ERROR_WANT_WRITE) {
    _tls_wants_write = true;
    return;
  }
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  const long verify = SSL_get_verify_result(ssl);
  fail(std::string("TLS handshake with ") + _options.host + ": " + buf +
       (verify != X509_V_OK ? std::string(" (") + X509_verify_cert_error_string(verify) + ")" : ""));
}

void Client::drop_socket() {
  if (_ssl) SSL_free(static_cast<SSL*>(_ssl));
  _ssl = nullptr;
  _tls_wants_write = false;
  if (_fd >= 0) ::close(_fd);
  _fd = -1;
}

void Client::fail(std::string why) {
  if (_error.empty()) _error = std::move(why);
  drop_socket();
  _state = State::kFailed;
}

void Client::close() {
  drop_socket();
  if (_state != State::kFailed && _state != State::kIdle) _state = State::kClosed;
}

void Client::disconnect() {
  if (_fd < 0) return;
  if (_state != State::kConnecting && _state != State::kTlsHandshake) {
    queue(Encoder::disconnect(_options.connect.version));
    flush();
  }
  close();
}

std::chrono::seconds Client::keepalive() const {
  return std::chrono::seconds(_connack.server_keepalive_s.value_or(_options.connect.keepalive_s));
}

void Client::queue(const std::string& bytes) {
  if (_fd < 0) return;
  if (_out.size() - _out_pos + bytes.size() > _options.max_write_buffer) {
    fail("write buffer full: the broker is not reading");
    return;
  }
  _out += bytes;
}

void Client::flush() {
  while (_fd >= 0 && _state != State::kConnecting && _state != State::kTlsHandshake &&
         _out_pos < _out.size()) {
    if (_ssl) {
      SSL* ssl = static_cast<SSL*>(_ssl);
      const int n = SSL_write(ssl, _out.data() + _out_pos, static_cast<int>(_out.size() - _out_pos));
      _tls_wants_write = false;
      if (n > 0) {
        _out_pos += static_cast<std::size_t>(n);
        continue;
      }
      const int err = SSL_get_error(ssl, n);
      if (err == SSL_ERROR_WANT_WRITE) _tls_wants_write = true;
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return;
      fail("TLS write failed");
      return;
    }
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

void Client::on_writable(Clock::time_point) {
  if (_fd < 0) return;
  if (_state == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return;
    if (err != 0) {
      fail("connect " + _options.host + ":" + std::to_string(_options.port) + ": " + std::strerror(err));
      return;
    }
    tcp_connected();
    return;
  }
  if (_state == State::kTlsHandshake) return tls_step();
  flush();
}

void Client::on_readable(Clock::time_point now) {
  if (_fd < 0) return;
  if (_state == State::kConnecting) {
    // Readable before writable means the connect failed (or the broker already spoke); on_writable decides.
    on_writable(now);
    if (_fd < 0 || _state == State::kConnecting) return;
  }
  if (_state == State::kTlsHandshake) {
    tls_step();
    if (_fd < 0 || _state == State::kTlsHandshake) return;
  }
  char buf[65536];
  for (;;) {
    ssize_t n;
    if (_ssl) {
      // SSL_read may hold decrypted bytes the socket no longer signals: read until it wants more input.
      SSL* ssl = static_cast<SSL*>(_ssl);
      const int r = SSL_read(ssl, buf, sizeof buf);
      if (r <= 0) {
        const int err = SSL_get_error(ssl, r);
        if (err == SSL_ERROR_WANT_READ) break;
        if (err == SSL_ERROR_WANT_WRITE) {
          _tls_wants_write = true;
          break;
        }
        fail(err == SSL_ERROR_ZERO_RETURN ? "connection closed by the broker" : "TLS read failed");
        return;
      }
      n = r;
    } else {
      n = ::recv(_fd, buf, sizeof buf, 0);
    }
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
      if (st == Decoder::Status::kNeedMore) break;
      if (st == Decoder::Status::kError) {
        fail("protocol error: " + _decoder.error());
        return;
      }
      handle(p, now);
      if (_fd < 0) return;  // failed, or the callback closed us
    }
  }
  flush();
}

void Client::handle(Packet& p, Clock::time_point) {
  if (auto* c = std::get_if<Connack>(&p)) {
    if (_state != State::kAwaitingConnack) return fail("unexpected CONNACK");
    _connack = *c;
    if (c->reason_code != 0) return fail("connection refused, reason code " + std::to_string(c->reason_code));
    if (_options.subscriptions.empty()) {
      became_ready();
    } else {
      _state = State::kSubscribing;
      queue(Encoder::subscribe(_options.connect.version, _subscribe_id, _options.subscriptions));
    }
  } else if (auto* s = std::get_if<Suback>(&p)) {
    if (_state != State::kSubscribing || s->packet_id != _subscribe_id) return fail("unexpected SUBACK");
    if (s->reason_codes.size() != _options.subscriptions.size()) return fail("SUBACK count mismatch");
    _suback = *s;
    for (std::size_t i = 0; i < s->reason_codes.size(); ++i) {
      if (s->reason_codes[i] >= 0x80) {
        return fail("subscription to " + _options.subscriptions[i].filter + " refused, reason code " +
                    std::to_string(s->reason_codes[i]));
      }
    }
    became_ready();
  } else if (auto* m = std::get_if<Publish>(&p)) {
    // A persistent session's queued messages may arrive right after CONNACK, before our SUBACK.
    if (_state != State::kSubscribing && _state != State::kReady) return fail("PUBLISH before CONNACK");
    if (m->qos > 1) return fail("QoS 2 PUBLISH; we subscribe with QoS <= 1");
    if (m->oversize > 0 && !_on_oversize)
      return fail("protocol error: packet of " + std::to_string(m->oversize) + " bytes exceeds the limit " +
                  std::to_string(_options.max_packet_size));
    if (m->qos == 1) _unacked.insert(m->packet_id);
    if (m->oversize > 0)
      _on_oversize(m->topic, m->payload, m->qos, m->packet_id, m->oversize);
    else if (_on_message)
      _on_message(m->topic, m->payload, m->qos, m->packet_id);
  } else if (std::holds_alternative<Pingresp>(p)) {
    _ping_outstanding = false;
    ++_pongs_received;
  } else if (auto* a = std::get_if<Puback>(&p)) {
    // The broker acknowledges in order, so the match is nearly always the front.
    for (auto it = _outgoing.begin(); it != _outgoing.end(); ++it) {
      if (it->packet_id != a->packet_id || !it->sent) continue;
      --_in_flight;
      if (a->reason_code == kNoMatchingSubscribers && _options.resend_unrouted.count() > 0) {
        // Nobody got it: the same message again later, under a new id (the broker kept nothing of it).
        it->sent = false;
        it->dup_candidate = false;
        it->packet_id = next_packet_id();
        it->not_before = Clock::now() + _options.resend_unrouted;
      } else {
        _outgoing.erase(it);
      }
      if (_on_puback) _on_puback(a->packet_id, a->reason_code);
      send_outgoing();
      return;
    }
    // Unknown id: a late PUBACK for a message already acked before a reconnect. Harmless.
  } else if (auto* d = std::get_if<Disconnect>(&p)) {
    fail("broker sent DISCONNECT, reason code " + std::to_string(d->reason_code));
  }
}

void Client::became_ready() {
  _state = State::kReady;
  send_outgoing();
}

void Client::send_outgoing(Clock::time_point now) {
  if (_state != State::kReady) return;
  // The broker's receive maximum (v5) bounds what may be unacknowledged; 3.1.1 brokers have no such
  // property, so mosquitto's default in-flight window (20) is a safe choice there.
  const std::size_t window = _connack.receive_maximum.value_or(20);
  bool any = false;
  for (auto& o : _outgoing) {
    if (_in_flight >= window) break;
    if (o.sent || o.not_before > now) continue;
    Publish p;
    p.topic = o.topic;
    p.payload = o.payload;
    p.qos = 1;
    p.packet_id = o.packet_id;
    // DUP tells the broker it may have seen this id before (sent on an earlier connection).
    p.dup = o.dup_candidate;
    queue(Encoder::publish(_options.connect.version, p));
    o.sent = true;
    o.dup_candidate = true;
    ++_in_flight;
    any = true;
  }
  if (any) {
    _last_sent = Clock::now();
    flush();
  }
}

bool Client::publish(std::string_view topic, std::string_view payload, std::uint8_t qos) {
  if (qos == 0) {
    if (_state != State::kReady) return false;
    Publish p;
    p.topic = std::string(topic);
    p.payload = std::string(payload);
    queue(Encoder::publish(_options.connect.version, p));
    _last_sent = Clock::now();
    flush();
    return _fd >= 0;
  }
  if (_outgoing.size() >= _options.max_outgoing) return false;
  _outgoing.push_back({next_packet_id(), false, false, std::string(topic), std::string(payload)});
  send_outgoing();
  return true;
}

std::uint16_t Client::next_packet_id() {
  // Packet ids: 1 is our SUBSCRIBE's; the rest cycle. max_outgoing stays far below 65,534, so an id is
  // never reused while its message is still kept.
  if (++_next_packet_id < 2) _next_packet_id = 2;
  return _next_packet_id;
}

bool Client::ack(std::uint16_t packet_id) {
  if (_fd < 0 || _unacked.erase(packet_id) == 0) return false;
  queue(Encoder::puback(_options.connect.version, packet_id));
  _last_sent = Clock::now();
  flush();
  return _fd >= 0;
}

void Client::tick(Clock::time_point now) {
  if (_fd < 0) return;
  if (_options.resend_unrouted.count() > 0 && _in_flight < _outgoing.size()) send_outgoing(now);
  const auto ka = keepalive();
  if (ka.count() == 0) return;
  if (_state == State::kConnecting || _state == State::kTlsHandshake || _state == State::kAwaitingConnack) {
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
