#include "api/bounded_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <string>

namespace fleettwin::api {

namespace {

// Set by the accept thread around the one call of process_and_close_socket that must refuse its
// connection: httplib's queue hands over a closure, never the socket, so the flag is how enqueue() tells
// the override which path to take.
thread_local bool t_refuse = false;

int to_ms(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

/// poll() for `events` on `sock` for up to `timeout_ms`: > 0 ready, 0 timed out, < 0 error.
int wait_for(socket_t sock, short events, int timeout_ms) {
  pollfd p{sock, events, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r;
}

void address_of(const sockaddr_storage& addr, std::string& ip, int& port) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (addr.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
    ::inet_ntop(AF_INET, &a.sin_addr, text.data(), text.size());
    port = ntohs(a.sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    ::inet_ntop(AF_INET6, &a.sin6_addr, text.data(), text.size());
    port = ntohs(a.sin6_port);
  }
  ip = text.data();
}

/// httplib's Stream over a connected socket, as its own SocketStream (which the library does not export):
/// reads buffered (the request parser reads a byte at a time), every read and write waits at most its
/// timeout, and a peer that has closed is not writable (how a live stream notices its client left).
class SocketStream final : public httplib::Stream {
 public:
  SocketStream(socket_t sock, int read_timeout_ms, int write_timeout_ms)
      : _sock(sock), _read_ms(read_timeout_ms), _write_ms(write_timeout_ms) {}

  bool buffered() const { return _begin < _end; }
  bool is_readable() const override { return buffered() || wait_for(_sock, POLLIN, _read_ms) > 0; }
  bool is_writable() const override {
    if (wait_for(_sock, POLLOUT, _write_ms) <= 0) return false;
    if (wait_for(_sock, POLLIN, 0) == 0) return true;
    char byte = 0;  // readable: either more request bytes (alive) or the peer's close (0)
    return ::recv(_sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      if (!is_readable()) return -1;
      ssize_t n = 0;
      do {
        n = ::recv(_sock, _buffer.data(), _buffer.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      _begin = 0;
      _end = static_cast<std::size_t>(n);
    }
    const std::size_t n = std::min(size, _end - _begin);
    std::memcpy(ptr, _buffer.data() + _begin, n);
    _begin += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (wait_for(_sock, POLLOUT, _write_ms) <= 0) return -1;
    ssize_t n = 0;
    do {
      n = ::send(_sock, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getpeername(_sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) address_of(addr, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(_sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) address_of(addr, ip, port);
  }
  socket_t socket() const override { return _sock; }

 private:
  socket_t _sock;
  int _read_ms, _write_ms;
  std::array<char, 4096> _buffer{};
  std::size_t _begin = 0, _end = 0;
};

/// The whole answer to a connection past the limit; sent without reading the request.
constexpr std::string_view kRefusal =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 70\r\n"
    "Retry-After: 1\r\nConnection: close\r\n\r\n"
    R"({"error":"too many connections to this server; try again in a second"})";
static_assert(kRefusal.size() - kRefusal.find("\r\n\r\n") - 4 == 70, "Content-Length must match the body");

void refuse(socket_t sock) {
  // Best effort and never blocking: the accept thread must not wait for a client it is turning away.
  (void)::send(sock, kRefusal.data(), kRefusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(sock, SHUT_WR);
  // Closing with the client's request unread would make the kernel answer with a reset, which can reach
  // the client before the 503 does; read what has arrived so far (without waiting) first.
  std::array<char, 4096> sink{};
  for (int i = 0; i < 16 && ::recv(sock, sink.data(), sink.size(), MSG_DONTWAIT) > 0; ++i) {
  }
}

}  // namespace

/// httplib's ThreadPool behind the connection count: the accept thread enqueues every accepted connection
/// here.
class BoundedServer::Queue final : public httplib::TaskQueue {
 public:
  Queue(std::size_t threads, BoundedServer& server) : _pool(threads), _server(server) {}

  void enqueue(std::function<void()> fn) override {
    ConnectionCounts& counts = _server._counts;
    if (counts.open.load() >= _server._max_connections) {
      counts.refused.fetch_add(1);
      t_refuse = true;
      fn();  // process_and_close_socket: answers 503 and closes, at once
      t_refuse = false;
      return;
    }
    counts.open.fetch_add(1);
    _pool.enqueue([fn = std::move(fn), &counts] {
      struct Release {
        ConnectionCounts& c;
        ~Release() { c.open.fetch_sub(1); }
      } release{counts};
      fn();
    });
  }
  void shutdown() override { _pool.shutdown(); }

 private:
  httplib::ThreadPool _pool;
  BoundedServer& _server;
};

BoundedServer::BoundedServer(std::size_t threads, std::size_t max_connections, ConnectionCounts& counts)
    : _max_connections(std::max<std::size_t>(1, max_connections)), _counts(counts) {
  new_task_queue = [this, threads] { return new Queue(threads, *this); };
}

bool BoundedServer::process_and_close_socket(socket_t sock) {
  bool ok = false;
  if (t_refuse) {
    refuse(sock);
  } else {
    ok = serve(sock);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

// httplib's keep-alive loop (process_server_socket): up to keep_alive_max_count_ requests on a connection,
// each awaited for at most keep_alive_timeout_sec_, until the server stops.
bool BoundedServer::serve(socket_t sock) {
  SocketStream strm(sock, to_ms(read_timeout_sec_, read_timeout_usec_),
                    to_ms(write_timeout_sec_, write_timeout_usec_));
  const auto request_arrives = [&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
    // In slices, so a server that stops does not wait out an idle client.
    while (svr_sock_ != INVALID_SOCKET) {
      if (strm.buffered()) return true;
      const int r = wait_for(sock, POLLIN, 100);
      if (r != 0) return r > 0;
      if (std::chrono::steady_clock::now() >= deadline) return false;
    }
    return false;
  };
  bool ok = false;
  for (std::size_t left = keep_alive_max_count_; left > 0 && request_arrives(); --left) {
    bool closed = false;
    ok = process_request(strm, left == 1, closed, nullptr);
    if (!ok || closed) break;
  }
  return ok;
}

}  // namespace fleettwin::api
