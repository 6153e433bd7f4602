#include "mqtt/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>

namespace fleettwin::mqtt {

namespace {

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

std::shared_ptr<void> tls_context(const TlsOptions& o) {
  static std::mutex mu;
  static std::map<std::tuple<std::string, std::string, std::string>, std::weak_ptr<void>> cache;
  std::lock_guard lock(mu);
  const bool shared_identity = !o.identity_per_connection;
  const auto key = shared_identity ? std::make_tuple(o.ca_file, o.cert_file, o.key_file)
                                   : std::make_tuple(o.ca_file, std::string(), std::string());
  if (auto it = cache.find(key); it != cache.end())
    if (auto ctx = it->second.lock()) return ctx;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) throw std::runtime_error("TLS: " + openssl_error());
  std::shared_ptr<void> owner(ctx, [](void* p) { SSL_CTX_free(static_cast<SSL_CTX*>(p)); });
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1)
    throw std::runtime_error("TLS: cannot load CA file " + o.ca_file + ": " + openssl_error());
  if (shared_identity && !o.cert_file.empty() &&
      SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1)
    throw std::runtime_error("TLS: cannot load certificate " + o.cert_file + ": " + openssl_error());
  if (shared_identity && !o.key_file.empty() &&
      SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TLS: cannot load key " + o.key_file + ": " + openssl_error());
  cache[key] = owner;
  return owner;
}

std::string use_connection_identity(void* ssl_ptr, const TlsOptions& o) {
  // Read at every connect: nothing per car stays in memory between connections but what the SSL holds.
  SSL* ssl = static_cast<SSL*>(ssl_ptr);
  if (!o.cert_file.empty() && SSL_use_certificate_chain_file(ssl, o.cert_file.c_str()) != 1)
    return "TLS: cannot load certificate " + o.cert_file + ": " + openssl_error();
  if (!o.key_file.empty() && SSL_use_PrivateKey_file(ssl, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return "TLS: cannot load key " + o.key_file + ": " + openssl_error();
  return {};
}

}  // namespace fleettwin::mqtt
