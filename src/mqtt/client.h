#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "mqtt/codec.h"
#include "mqtt/tls.h"

namespace fleettwin::mqtt {

struct ClientOptions {
  std::string host = "127.0.0.1";  ///< numeric IPv4/IPv6 address or a resolvable name (resolved blocking)
  std::uint16_t port = 1883;
  ConnectOptions connect;
  std::vector<Subscription> subscriptions;
  /// Larger packets from the broker are a protocol error, except a PUBLISH when on_oversize is set (it gets
  /// it, truncated). Not announced by itself: connect.maximum_packet_size is what the broker is told.
  std::size_t max_packet_size = 1 << 20;
  std::size_t max_write_buffer = 4 << 20;
  /// QoS 1 messages this client publishes and keeps until the broker acknowledges them; publish() refuses
  /// more. In flight at once: at most the broker's receive maximum (CONNACK), the rest wait their turn.
  std::size_t max_outgoing = 1000;
  /// Above zero: a QoS 1 message the broker acknowledged with reason 0x10 (no matching subscribers: it took
  /// the message and had nobody to give it to, e.g. a restarted broker before its subscribers are back) is
  /// kept and published again after this delay, as a new message, until a subscriber gets it.
  std::chrono::milliseconds resend_unrouted{0};
  TlsOptions tls;  ///< ca_file set: TLS (OpenSSL, non-blocking) with the server's certificate checked
};

/// (topic, payload, qos, packet_id); packet_id is 0 for QoS 0. The views die when the callback returns.
using MessageCallback = std::function<void(std::string_view topic, std::string_view payload, std::uint8_t qos,
                                           std::uint16_t packet_id)>;
/// A PUBLISH over max_packet_size: (topic, first payload bytes, qos, packet_id, packet size). Its owner acks
/// it like any message; the rest of its bytes were never buffered.
using OversizeCallback = std::function<void(std::string_view topic, std::string_view prefix, std::uint8_t qos,
                                            std::uint16_t packet_id, std::size_t size)>;

/// An MQTT client over one non-blocking TCP socket, on our own codec (mqtt/codec.h says why not
/// libmosquitto): it acknowledges a received QoS 1 message only when its owner calls ack(), so the bridge can
/// hold PUBACKs until the log has the records (DESIGN.md §5), and it holds one descriptor (libmosquitto
/// holds three), so the simulator drives ~16,000 cars per process. Outgoing QoS 1 messages are kept until
/// the broker's PUBACK and sent again (DUP) after a reconnect. No threads: the one thread that owns it polls
/// fd() and calls on_readable()/on_writable()/tick(); callbacks run inside those calls on that thread. One
/// connection at a time; reconnecting means start() again (the session, and what is unacknowledged, stays).
class Client {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State : std::uint8_t {
    kIdle,
    kConnecting,
    kTlsHandshake,
    kAwaitingConnack,
    kSubscribing,
    kReady,
    kClosed,
    kFailed
  };

  Client(ClientOptions options, MessageCallback on_message);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Begins the TCP connect (non-blocking) and queues CONNECT. False (and state failed) on immediate error.
  bool start(Clock::time_point now = Clock::now());
  /// The socket to poll; -1 when not connected.
  int fd() const { return _fd; }
  /// Poll for POLLOUT too while this is true (connect in progress or bytes queued).
  bool wants_write() const {
    return _fd >= 0 && (_state == State::kConnecting || _tls_wants_write || _out_pos < _out.size());
  }

  void on_readable(Clock::time_point now = Clock::now());
  void on_writable(Clock::time_point now = Clock::now());
  /// Keepalive: sends PINGREQ when idle for the keepalive interval, fails the connection when the broker
  /// stays silent for 1.5 intervals after one. Call at least every keepalive/2.
  void tick(Clock::time_point now = Clock::now());

  /// Queues the PUBACK for a QoS 1 message delivered on this connection. False if the id is not pending
  /// (already acked, QoS 0, or from an earlier connection: the broker redelivers those with new ids).
  bool ack(std::uint16_t packet_id);
  /// Publishes. QoS 0 goes out only when ready (false otherwise: QoS 0 may be lost by definition). QoS 1 is
  /// kept until the broker's PUBACK, sent now or after the next CONNACK; false when max_outgoing messages
  /// are already kept.
  bool publish(std::string_view topic, std::string_view payload, std::uint8_t qos);
  /// QoS 1 messages kept for the broker's PUBACK (sent or waiting for a send slot or a connection).
  std::size_t outgoing() const { return _outgoing.size(); }
  /// Called with the packet id of each of our QoS 1 messages the broker acknowledged.
  void on_puback(std::function<void(std::uint16_t packet_id, std::uint8_t reason_code)> callback) {
    _on_puback = std::move(callback);
  }

  /// Receives the PUBLISH packets over max_packet_size instead of failing the connection on them.
  void on_oversize(OversizeCallback callback) { _on_oversize = std::move(callback); }

  /// Queues DISCONNECT, flushes what the socket takes now, closes. The broker keeps a persistent session.
  void disconnect();
  /// Closes without DISCONNECT, as a crash would.
  void close();

  State state() const { return _state; }
  bool ready() const { return _state == State::kReady; }
  const std::string& error() const { return _error; }
  const ClientOptions& options() const { return _options; }
  const Connack& connack() const { return _connack; }
  const Suback& suback() const { return _suback; }
  std::size_t pending_acks() const { return _unacked.size(); }
  std::uint64_t pings_sent() const { return _pings_sent; }
  std::uint64_t pongs_received() const { return _pongs_received; }

 private:
  struct Outgoing {
    std::uint16_t packet_id;
    bool sent;           // on this connection
    bool dup_candidate;  // sent before, on this or an earlier connection
    std::string topic;
    std::string payload;
    Clock::time_point not_before{};  // an unrouted message waits for its resend_unrouted delay
  };
  void fail(std::string why);
  void tcp_connected();  // TLS handshake next, or straight to CONNACK
  void tls_step();       // drives the handshake; false-free: state tells how far it got
  void drop_socket();
  void queue(const std::string& bytes);
  void flush();
  void handle(Packet& p, Clock::time_point now);
  void became_ready();
  void send_outgoing(Clock::time_point now = Clock::now());
  std::uint16_t next_packet_id();
  std::chrono::seconds keepalive() const;

  ClientOptions _options;
  MessageCallback _on_message;
  OversizeCallback _on_oversize;
  std::function<void(std::uint16_t, std::uint8_t)> _on_puback;
  Decoder _decoder;
  int _fd = -1;
  std::shared_ptr<void> _tls_ctx;  // SSL_CTX, shared by clients with the same TLS options
  void* _ssl = nullptr;            // SSL*; void keeps OpenSSL's headers out of every includer
  bool _tls_wants_write = false;
  State _state = State::kIdle;
  std::string _error;
  std::string _out;
  std::size_t _out_pos = 0;
  Connack _connack;
  Suback _suback;
  std::uint16_t _subscribe_id = 1;
  std::unordered_set<std::uint16_t> _unacked;
  std::deque<Outgoing> _outgoing;  // publish order; the broker acks QoS 1 in order per connection
  std::size_t _in_flight = 0;      // _outgoing entries sent on this connection and not yet acked
  std::uint16_t _next_packet_id = 0;
  Clock::time_point _last_sent{};
  Clock::time_point _last_received{};
  bool _ping_outstanding = false;
  std::uint64_t _pings_sent = 0;
  std::uint64_t _pongs_received = 0;
};

}  // namespace fleettwin::mqtt
