#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/tokens.h"
#include "registry/store.h"

namespace fleettwin::registry {

struct EmbeddedRegistryOptions {
  std::string host = "127.0.0.1";
  int port = 0;              ///< 0: the system picks a free port; port() tells which
  std::string journal_path;  ///< where schemas and ids persist (SchemaStore); empty: in memory only
  int threads = 4;           ///< HTTP worker threads; registry traffic is a few requests per client start
  /// When not empty, requests that change the registry need `Authorization: Bearer` with one of these
  /// tokens (registry.tokens): registering a schema the operator role, changing a compatibility level
  /// (PUT) or deleting the admin role. 401 without a known token, 403 with too small a role. Reads stay
  /// open, POSTs that change nothing too (looking a schema up, testing compatibility): every Confluent
  /// deserializer fetches schemas by id, and serializers that do not auto-register look theirs up, with no
  /// credentials configured; what they read is not secret (the schemas of the topics).
  core::TokenTable tokens;
  /// Request bodies larger than this are refused (413) before they are parsed; a schema is a few KB (the
  /// telemetry schema of a catalog of 10,000 signals is about 1.5 MB).
  std::size_t max_request_bytes = 4u << 20;
};

/// One answered request of the registry's REST API: the HTTP status and the JSON body.
struct RegistryResponse {
  int status = 200;
  std::string body;
};

/// Whether a request may run: nullopt when it may, else the 401 or 403 answer. `authorization` is the
/// request's Authorization header; an empty `tokens` lets everything through (see
/// EmbeddedRegistryOptions::tokens for which requests need which role).
std::optional<RegistryResponse> authorize_registry_request(const core::TokenTable& tokens,
                                                           std::string_view method, std::string_view target,
                                                           std::string_view authorization);

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
