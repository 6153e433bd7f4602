#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "registry/protocol.h"

namespace fleettwin::registry {

struct SchemaRegistryClientOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{10000};  ///< each of sending the request and reading the answer
  /// Sent as `Authorization: Bearer` when not empty: what a registry with registry.tokens needs to accept a
  /// registration (config key registry.token).
  std::string token;
};

/// Talks to a Confluent Schema Registry, or EmbeddedRegistry, over its REST API: producers register the
/// schema of their topic's values to get the id every record carries, consumers fetch the schema of an id
/// they meet. Both answers are cached for the client's lifetime (ids and their schemas never change), so
/// each costs one HTTP call per process. Thread-safe: stages call it from their own threads; cache hits
/// take a mutex briefly and never wait for an HTTP call in flight.
class SchemaRegistryClient {
 public:
  /// `base_url`: "http://host:port" or "https://host:port", optionally with a path prefix; "host:port"
  /// means http. Throws std::invalid_argument when it cannot be parsed. Connects lazily.
  explicit SchemaRegistryClient(const std::string& base_url, SchemaRegistryClientOptions options = {});
  ~SchemaRegistryClient();
  SchemaRegistryClient(const SchemaRegistryClient&) = delete;
  SchemaRegistryClient& operator=(const SchemaRegistryClient&) = delete;

  /// The global id of `schema` under `subject` (POST /subjects/{subject}/versions), registering it when
  /// new. Throws SchemaRegistryError: status 409 when the subject's compatibility level refuses the schema,
  /// 422 when it is invalid, 0 when the registry did not answer (refused, timed out).
  int32_t register_schema(std::string_view subject, std::string_view schema);
  /// The schema text of `id` (GET /schemas/ids/{id}). Throws SchemaRegistryError (404 when unknown).
  std::string get_schema(int32_t id);

  const std::string& base_url() const { return _base_url; }

 private:
  struct Http;  // keeps httplib.h out of every includer
  /// One request; the parsed "id" or "schema" member of a 200 answer's body, else throws.
  std::string call(const char* method, const std::string& path, const std::string& body,
                   std::string_view member);

  std::string _base_url;
  std::string _prefix;  ///< path prefix of base_url, without a trailing slash
  std::unique_ptr<Http> _http;
  std::mutex _http_mutex;  ///< one request at a time on the shared connection settings
  std::mutex _cache_mutex;
  std::unordered_map<std::string, int32_t> _ids;  ///< subject NUL schema -> id
  std::unordered_map<int32_t, std::string> _schemas;
};

}  // namespace fleettwin::registry
