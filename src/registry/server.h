#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "registry/store.h"

namespace fleettwin::registry {

struct EmbeddedRegistryOptions {
  std::string host = "127.0.0.1";
  int port = 0;              ///< 0: the system picks a free port; port() tells which
  std::string journal_path;  ///< where schemas and ids persist (SchemaStore); empty: in memory only
  int threads = 4;           ///< HTTP worker threads; registry traffic is a few requests per client start
};

/// One answered request of the registry's REST API: the HTTP status and the JSON body.
struct RegistryResponse {
  int status = 200;
  std::string body;
};

/// Answers one request of the REST API below against `store`, without HTTP: `target` is the raw request
/// target (path and query, percent-encoded), `body` the request body. What the server runs for every
/// request; any thread (the store is thread-safe). Never throws for a bad request: 4xx, or 500 for an
/// unexpected failure.
RegistryResponse handle_registry_request(SchemaStore& store, std::string_view method, std::string_view target,
                                         const std::string& body);

/// A Confluent-compatible schema registry served over HTTP (cpp-httplib), so fleettwin needs no external
/// registry: run by `fleettwin registry --listen ADDR` and inside `fleettwin up`, and usable by any
/// Confluent client. Routes: GET /subjects, GET|POST /subjects/{s}/versions, GET
/// /subjects/{s}/versions/{v|latest}[/schema], POST /subjects/{s}, GET /schemas/ids/{id}[/schema], GET
/// /schemas/types, POST /compatibility/subjects/{s}/versions[/{v|latest}], GET|PUT /config[/{s}].
/// start() and stop() are called by the owning thread; requests run on the server's own worker threads
/// against the thread-safe SchemaStore.
class EmbeddedRegistry {
 public:
  /// Loads the journal (see SchemaStore); does not listen yet.
  explicit EmbeddedRegistry(EmbeddedRegistryOptions options = {});
  ~EmbeddedRegistry();  ///< stops
  EmbeddedRegistry(const EmbeddedRegistry&) = delete;
  EmbeddedRegistry& operator=(const EmbeddedRegistry&) = delete;

  /// Binds and starts serving on a thread of its own. Throws std::runtime_error when the address cannot be
  /// bound (in use, bad host). Once it returns, requests are accepted.
  void start();
  /// Stops accepting, finishes requests in flight and joins the threads. Idempotent.
  void stop();

  /// The bound port (the chosen one when the options said 0); 0 before start().
  int port() const;
  /// "http://host:port" for clients; a wildcard host (0.0.0.0, ::) is reported as the loopback address.
  std::string url() const;
  SchemaStore& store();
  /// HTTP requests answered since construction, whatever their outcome (tests use it to prove caching).
  uint64_t request_count() const;

 private:
  struct Impl;  // keeps httplib.h out of every includer
  std::unique_ptr<Impl> _impl;
};

}  // namespace fleettwin::registry
