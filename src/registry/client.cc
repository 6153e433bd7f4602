#include "registry/client.h"

#include <httplib.h>
#include <simdjson.h>

#include <cctype>
#include <stdexcept>
#include <utility>

#include "codec/json_writer.h"

namespace fleettwin::registry {

namespace {

namespace dom = simdjson::dom;

// RFC 3986 unreserved characters pass, everything else is escaped, so a subject is always one path segment.
std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// A NUL cannot occur in a subject that is a URL segment, so the pair cannot be confused with another.
std::string cache_key(std::string_view subject, std::string_view schema) {
  std::string key(subject);
  key.push_back('\0');
  key += schema;
  return key;
}

std::string excerpt(std::string_view body) {
  constexpr std::size_t kMax = 200;
  return body.size() <= kMax ? std::string(body) : std::string(body.substr(0, kMax)) + "...";
}

}  // namespace

struct SchemaRegistryClient::Http {
  httplib::Client client;
  explicit Http(const std::string& scheme_host_port) : client(scheme_host_port) {}
};

SchemaRegistryClient::SchemaRegistryClient(const std::string& base_url, SchemaRegistryClientOptions options) {
  std::string_view url = base_url;
  std::string scheme = "http://";
  if (const auto p = url.find("://"); p != std::string_view::npos) {
    scheme = std::string(url.substr(0, p + 3));
    url.remove_prefix(p + 3);
  }
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  if (scheme != "http://" && scheme != "https://") {
    throw std::invalid_argument("schema registry url " + base_url + ": scheme is neither http nor https");
  }
  const std::size_t slash = url.find('/');
  const std::string_view host_port = url.substr(0, slash);
  if (host_port.empty()) throw std::invalid_argument("schema registry url " + base_url + ": no host");
  if (slash != std::string_view::npos) _prefix = std::string(url.substr(slash));
  _base_url = scheme + std::string(url);  // normalized: scheme added, trailing '/' dropped
  _http = std::make_unique<Http>(scheme + std::string(host_port));
  if (!_http->client.is_valid()) throw std::invalid_argument("schema registry url " + base_url + ": invalid");
  _http->client.set_connection_timeout(options.connect_timeout);
  _http->client.set_read_timeout(options.request_timeout);
  _http->client.set_write_timeout(options.request_timeout);
  _http->client.set_url_encode(false);  // paths are escaped here, per segment
  httplib::Headers headers{{"Accept", std::string(kSchemaRegistryContentType) + ", application/json"}};
  // Sent with every request: a registry that requires tokens (registry.tokens) asks for one on writes only,
  // but sending it always keeps the client simple and is what Confluent clients do with bearer auth.
  if (!options.token.empty()) headers.emplace("Authorization", "Bearer " + std::move(options.token));
  _http->client.set_default_headers(std::move(headers));
}

SchemaRegistryClient::~SchemaRegistryClient() = default;

std::string SchemaRegistryClient::call(const char* method, const std::string& path, const std::string& body,
                                       std::string_view member) {
  httplib::Result r = [&] {
    std::lock_guard lock(_http_mutex);
    return std::string_view(method) == "POST"
               ? _http->client.Post(_prefix + path, body, std::string(kSchemaRegistryContentType))
               : _http->client.Get(_prefix + path);
  }();
  const std::string what = std::string(method) + " " + _base_url + path;
  if (!r) throw SchemaRegistryError(0, 0, what + ": " + httplib::to_string(r.error()));

  dom::parser parser;
  dom::object o;
  const bool json = parser.parse(r->body).get(o) == simdjson::SUCCESS;
  if (r->status != 200) {
    int64_t code = 0;
    std::string_view message;
    if (json && o["message"].get(message) == simdjson::SUCCESS) {
      if (o["error_code"].get(code) != simdjson::SUCCESS) code = 0;
      throw SchemaRegistryError(r->status, static_cast<int>(code), std::string(message));
    }
    throw SchemaRegistryError(r->status, 0, what + ": " + excerpt(r->body));
  }
  if (json) {
    if (member == "id") {
      int64_t id;
      if (o["id"].get(id) == simdjson::SUCCESS && id > 0 && id <= INT32_MAX) return std::to_string(id);
    } else {
      std::string_view schema;
      if (o[member].get(schema) == simdjson::SUCCESS) return std::string(schema);
    }
  }
  throw SchemaRegistryError(
      r->status, 0, what + ": answer without a valid \"" + std::string(member) + "\": " + excerpt(r->body));
}

int32_t SchemaRegistryClient::register_schema(std::string_view subject, std::string_view schema) {
  {
    std::lock_guard lock(_cache_mutex);
    if (const auto it = _ids.find(cache_key(subject, schema)); it != _ids.end()) return it->second;
  }
  std::string body;
  codec::JsonWriter(body).begin_object().key("schema").string(schema).end_object();
  const auto id = static_cast<int32_t>(
      std::stoll(call("POST", "/subjects/" + percent_encode(subject) + "/versions", body, "id")));
  std::lock_guard lock(_cache_mutex);
  _ids.emplace(cache_key(subject, schema), id);
  _schemas.emplace(id, schema);  // the id's schema is this one (or one with the same canonical form)
  return id;
}

std::string SchemaRegistryClient::get_schema(int32_t id) {
  {
    std::lock_guard lock(_cache_mutex);
    if (const auto it = _schemas.find(id); it != _schemas.end()) return it->second;
  }
  std::string schema = call("GET", "/schemas/ids/" + std::to_string(id), {}, "schema");
  std::lock_guard lock(_cache_mutex);
  _schemas.emplace(id, schema);
  return schema;
}

}  // namespace fleettwin::registry
