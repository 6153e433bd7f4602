#include "registry/server.h"

#include <httplib.h>
#include <simdjson.h>
#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "codec/json_writer.h"

namespace fleettwin::registry {

namespace {

namespace dom = simdjson::dom;
namespace errors = registry_errors;

using Segments = std::vector<std::string>;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// `plus_is_space`: in a query string '+' stands for a space (as httplib's get_param_value reads it).
std::string percent_decode(std::string_view s, bool plus_is_space = false) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
      continue;
    }
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi << 4 | lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// httplib's regex routes match the already decoded path, where a subject holding an encoded '/' could not
// be told apart from the path's own separators; splitting the raw target first keeps subjects opaque.
Segments split_target(std::string_view target) {
  target = target.substr(0, target.find('?'));
  Segments out;
  std::size_t start = 0;
  while (start <= target.size()) {
    std::size_t end = target.find('/', start);
    if (end == std::string_view::npos) end = target.size();
    if (end > start) out.push_back(percent_decode(target.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

// The value of the first query parameter `name` of a raw request target; empty when it has none.
std::string query_param(std::string_view target, std::string_view name) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq), true) == name) {
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::string error_body(int error_code, std::string_view message) {
  std::string out;
  codec::JsonWriter(out)
      .begin_object()
      .key("error_code")
      .integer(error_code)
      .key("message")
      .string(message)
      .end_object();
  return out;
}

int parse_version(const std::string& text) {
  if (text == "latest" || text == "-1") return SchemaStore::kLatest;
  int v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 1) {
    throw SchemaRegistryError(
        422, errors::kInvalidVersion,
        "The specified version '" + text +
            "' is not a valid version id. Allowed values are between [1, 2^31-1] and the "
            "string \"latest\"");
  }
  return v;
}

/// The parts of a request body the routes read. Parsed with a parser per request: bodies are small and
/// requests rare.
struct Body {
  dom::parser parser;
  dom::object object;

  explicit Body(const std::string& text) {
    if (parser.parse(text).get(object) != simdjson::SUCCESS) {
      throw SchemaRegistryError(400, 400, "the request body is not a JSON object");
    }
  }

  std::string_view schema() {
    std::string_view schema, type;
    if (object["schema"].get(schema) != simdjson::SUCCESS || schema.empty()) {
      throw SchemaRegistryError(422, errors::kInvalidSchema, "Empty schema");
    }
    if (object["schemaType"].get(type) == simdjson::SUCCESS && type != "AVRO") {
      throw SchemaRegistryError(
          422, errors::kInvalidSchema,
          "Invalid schema: schemaType " + std::string(type) + " is not supported, only AVRO");
    }
    dom::array refs;
    if (object["references"].get(refs) == simdjson::SUCCESS && refs.size() > 0) {
      throw SchemaRegistryError(422, errors::kInvalidSchema,
                                "Invalid schema: schema references are not supported");
    }
    return schema;
  }

  CompatibilityLevel level() {
    std::string_view text;
    std::string upper;
    if (object["compatibility"].get(text) == simdjson::SUCCESS) {
      for (char c : text) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    const auto level = parse_compatibility_level(upper);
    if (!level) {
      throw SchemaRegistryError(
          422, errors::kInvalidCompatibilityLevel,
          "Invalid compatibility level. Valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, "
          "FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE");
    }
    return *level;
  }
};

std::string version_json(const SubjectVersion& v) {
  std::string out;
  codec::JsonWriter(out)
      .begin_object()
      .key("subject")
      .string(v.subject)
      .key("version")
      .integer(v.version)
      .key("id")
      .integer(v.id)
      .key("schema")
      .string(v.schema)
      .end_object();
  return out;
}

std::string level_json(std::string_view key, CompatibilityLevel level) {
  std::string out;
  codec::JsonWriter(out).begin_object().key(key).string(to_string(level)).end_object();
  return out;
}

// Returns the response body; throws SchemaRegistryError for every error answer.
std::string route(SchemaStore& store, std::string_view m, std::string_view target, const std::string& body) {
  const Segments s = split_target(target);
  const auto method = [&](std::string_view allowed) {
    if (m != allowed) throw SchemaRegistryError(405, 405, "HTTP 405 Method Not Allowed");
  };
  const std::size_t n = s.size();
  std::string out;
  codec::JsonWriter w(out);
  if (n == 0) {
    method("GET");
    return "{}";
  }
  if (s[0] == "subjects") {
    if (n == 1) {
      method("GET");
      w.begin_array();
      for (const auto& subject : store.subjects()) w.string(subject);
      w.end_array();
      return out;
    }
    const std::string& subject = s[1];
    if (n == 2) {  // lookup
      method("POST");
      Body b(body);
      return version_json(store.lookup(subject, b.schema()));
    }
    if (s[2] == "versions" && n == 3) {
      if (m == "POST") {
        Body b(body);
        const RegisterResult r = store.register_schema(subject, b.schema());
        w.begin_object().key("id").integer(r.id).end_object();
        return out;
      }
      method("GET");
      w.begin_array();
      for (int v : store.versions(subject)) w.integer(v);
      w.end_array();
      return out;
    }
    if (s[2] == "versions" && (n == 4 || (n == 5 && s[4] == "schema"))) {
      method("GET");
      const SubjectVersion v = store.version(subject, parse_version(s[3]));
      return n == 4 ? version_json(v) : v.schema;
    }
  } else if (s[0] == "schemas" && n >= 2) {
    if (n == 2 && s[1] == "types") {
      method("GET");
      return "[\"AVRO\"]";
    }
    if (s[1] == "ids" && (n == 3 || (n == 4 && s[3] == "schema"))) {
      method("GET");
      int32_t id = 0;
      const auto [end, ec] = std::from_chars(s[2].data(), s[2].data() + s[2].size(), id);
      const auto schema =
          ec == std::errc() && end == s[2].data() + s[2].size() ? store.schema_by_id(id) : std::nullopt;
      if (!schema) throw SchemaRegistryError(404, errors::kSchemaNotFound, "Schema " + s[2] + " not found");
      if (n == 4) return *schema;
      w.begin_object().key("schema").string(*schema).end_object();
      return out;
    }
  } else if (s[0] == "compatibility" && n >= 4 && s[1] == "subjects" && s[3] == "versions" && n <= 5) {
    method("POST");
    Body b(body);
    const std::string_view schema = b.schema();
    const std::optional<int> version = n == 5 ? std::optional<int>(parse_version(s[4])) : std::nullopt;
    const auto problems = store.compatibility_problems(s[2], schema, version);
    w.begin_object().key("is_compatible").boolean(problems.empty());
    if (query_param(target, "verbose") == "true") {
      w.key("messages").begin_array();
      for (const auto& p : problems) w.string(p);
      w.end_array();
    }
    w.end_object();
    return out;
  } else if (s[0] == "config" && n <= 2) {
    if (m == "PUT") {
      Body b(body);
      const CompatibilityLevel level = b.level();
      n == 1 ? store.set_global_compatibility(level) : store.set_subject_compatibility(s[1], level);
      return level_json("compatibility", level);
    }
    method("GET");
    if (n == 1) return level_json("compatibilityLevel", store.global_compatibility());
    if (auto level = store.subject_compatibility(s[1])) return level_json("compatibilityLevel", *level);
    if (query_param(target, "defaultToGlobal") == "true") {
      return level_json("compatibilityLevel", store.global_compatibility());
    }
    throw SchemaRegistryError(404, errors::kSubjectConfigNotFound,
                              "Subject '" + s[1] + "' does not have subject-level compatibility configured");
  }
  throw SchemaRegistryError(404, 404, "HTTP 404 Not Found");
}

/// The role a request needs when the registry has tokens, or nullopt for one anybody may make: reads, and
/// the POSTs that change nothing (lookup, compatibility test). Every other POST registers, so it needs an
/// operator: a POST path the routes do not know is a write too (refused before it can be anything else).
std::optional<core::Role> needed_role(std::string_view method, std::string_view target) {
  if (method == "GET" || method == "HEAD") return std::nullopt;
  if (method == "POST") {
    const Segments s = split_target(target);
    const bool lookup = s.size() == 2 && s[0] == "subjects";
    const bool test = !s.empty() && s[0] == "compatibility";
    if (lookup || test) return std::nullopt;
    return core::Role::kOperator;
  }
  return core::Role::kAdmin;  // PUT /config (the rules for every later registration), DELETE
}

}  // namespace

std::optional<RegistryResponse> authorize_registry_request(const core::TokenTable& tokens,
                                                           std::string_view method, std::string_view target,
                                                           std::string_view authorization) {
  if (tokens.empty()) return std::nullopt;
  const auto needed = needed_role(method, target);
  if (!needed) return std::nullopt;
  const std::string_view token = core::bearer_token(authorization);
  const auto role = token.empty() ? std::nullopt : tokens.role_of(token);
  if (!role) {
    return RegistryResponse{401, error_body(errors::kUnauthorized,
                                            token.empty() ? "this registry needs a token for changes: send "
                                                            "Authorization: Bearer <token>"
                                                          : "unknown registry token")};
  }
  if (static_cast<int>(*role) < static_cast<int>(*needed)) {
    return RegistryResponse{
        403, error_body(errors::kForbidden, "this needs the " + std::string(to_string(*needed)) +
                                                " role; the token has " + std::string(to_string(*role)))};
  }
  return std::nullopt;
}

RegistryResponse handle_registry_request(SchemaStore& store, std::string_view method, std::string_view target,
                                         const std::string& body) {
  RegistryResponse res;
  try {
    res.body = route(store, method, target, body);
  } catch (const SchemaRegistryError& e) {
    res.status = e.status();
    res.body = error_body(e.error_code(), e.message());
  } catch (const std::exception& e) {
    res.status = 500;
    res.body = error_body(errors::kStoreError, e.what());
  }
  return res;
}

struct EmbeddedRegistry::Impl {
  EmbeddedRegistryOptions options;
  SchemaStore store;
  httplib::Server server;
  std::thread thread;
  std::atomic<int> port{0};
  std::atomic<uint64_t> requests{0};

  explicit Impl(EmbeddedRegistryOptions o) : options(std::move(o)), store(options.journal_path) {
    const int threads = std::max(1, options.threads);
    server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    // httplib also sets SO_REUSEPORT by default, which would let a second registry share a port that is
    // in use instead of failing to start.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server.set_keep_alive_timeout(2);  // bounds how long stop() waits for an idle keep-alive client
    server.set_payload_max_length(options.max_request_bytes);
    // httplib answers a body over the limit (413), an overlong target (414) and a malformed request (400)
    // itself, with an empty body; Confluent clients expect the JSON error shape.
    server.set_error_handler(
        [max = options.max_request_bytes](const httplib::Request&, httplib::Response& res) {
          if (!res.body.empty()) return;
          const std::string message = res.status == 413
                                          ? "request body larger than " + std::to_string(max) + " bytes"
                                      : res.status == 414 ? std::string("request target too long")
                                                          : "HTTP " + std::to_string(res.status);
          res.set_content(error_body(res.status, message), std::string(kSchemaRegistryContentType));
        });
    const auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    server.Get(".*", handler);
    server.Post(".*", handler);
    server.Put(".*", handler);
    server.Delete(".*", handler);
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    requests.fetch_add(1, std::memory_order_relaxed);
    RegistryResponse r = authorize_registry_request(options.tokens, req.method, req.target,
                                                    req.get_header_value("Authorization"))
                             .value_or(RegistryResponse{});
    if (r.status == 200) {
      r = handle_registry_request(store, req.method, req.target, req.body);
    } else if (r.status == 401) {
      res.set_header("WWW-Authenticate", "Bearer");
    }
    res.status = r.status;
    res.set_content(r.body, std::string(kSchemaRegistryContentType));
  }
};

EmbeddedRegistry::EmbeddedRegistry(EmbeddedRegistryOptions options)
    : _impl(std::make_unique<Impl>(std::move(options))) {}

EmbeddedRegistry::~EmbeddedRegistry() { stop(); }

void EmbeddedRegistry::start() {
  Impl& i = *_impl;
  if (i.thread.joinable()) return;
  const int port = i.options.port == 0
                       ? i.server.bind_to_any_port(i.options.host)
                       : (i.server.bind_to_port(i.options.host, i.options.port) ? i.options.port : -1);
  if (port <= 0) {
    throw std::runtime_error("schema registry: cannot listen on " + i.options.host + ":" +
                             std::to_string(i.options.port));
  }
  i.port = port;
  i.thread = std::thread([&i] { i.server.listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs, so a stop() right after start() could
  // otherwise leave the thread in accept() for ever.
  for (int tries = 0; !i.server.is_running() && tries < 5000; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void EmbeddedRegistry::stop() {
  Impl& i = *_impl;
  if (!i.thread.joinable()) return;
  i.server.stop();
  i.thread.join();
}

int EmbeddedRegistry::port() const { return _impl->port; }

std::string EmbeddedRegistry::url() const {
  std::string host = _impl->options.host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port());
}

SchemaStore& EmbeddedRegistry::store() { return _impl->store; }

uint64_t EmbeddedRegistry::request_count() const { return _impl->requests.load(std::memory_order_relaxed); }

}  // namespace fleettwin::registry
