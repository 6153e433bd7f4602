#pragma once

#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace fleettwin::api {

/// How many connections a BoundedServer holds and has refused. Atomics: the accept thread and the workers
/// update them, /metrics reads them.
struct ConnectionCounts {
  std::atomic<std::size_t> open{0};  ///< accepted and not yet closed (queued for a worker or served)
  std::atomic<uint64_t> refused{0};  ///< answered 503 at accept because `open` was at the limit
};

/// An httplib::Server that holds at most `max_connections` connections at once.
///
/// Why: httplib accepts every connection and queues it for its worker pool without a limit, so a client
/// that opens connections and sends nothing holds a descriptor each until the read timeout; enough of them
/// take every descriptor of the process (the store's, the log's, the MQTT front door's). Here the accept
/// thread counts the connections it hands to the pool and answers the one past the limit at once with a
/// canned 503 (`Retry-After: 1`) and closes it, without reading from it, so a flood costs one send() each.
///
/// httplib 0.11 has no hook between accept() and its queue that sees the socket, so the server overrides
/// its per-connection loop (process_and_close_socket): the same keep-alive loop over process_request(),
/// with a socket stream of its own. Threads: the accept thread runs enqueue and the refusals; the workers
/// serve connections.
class BoundedServer : public httplib::Server {
 public:
  /// `threads` workers; `counts` must outlive the server.
  BoundedServer(std::size_t threads, std::size_t max_connections, ConnectionCounts& counts);

 private:
  class Queue;
  bool process_and_close_socket(socket_t sock) override;
  bool serve(socket_t sock);

  const std::size_t _max_connections;
  ConnectionCounts& _counts;
};

}  // namespace fleettwin::api
