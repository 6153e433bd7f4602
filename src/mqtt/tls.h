#pragma once

#include <memory>
#include <string>

namespace fleettwin::mqtt {

/// TLS settings of an MQTT connection (our client and libmosquitto's alike). Plain value.
struct TlsOptions {
  std::string ca_file;  ///< empty: no TLS
  std::string cert_file;
  std::string key_file;
  /// Load cert_file/key_file into each connection rather than into the shared context: a simulator process
  /// runs thousands of cars, each with its own certificate, on one context (a context per car would cost
  /// far more memory than the certificate itself).
  bool identity_per_connection = false;
  bool insecure = false;  ///< skip the server hostname check (test setups with self-made certificates)
};

/// An OpenSSL client context for `options`, shared by every connection with the same options (one per
/// fleet, not one per car). Throws std::runtime_error naming the file OpenSSL could not load. Any thread.
std::shared_ptr<void> tls_context(const TlsOptions& options);

/// Loads `options`' certificate and key into one connection (an SSL*), for identity_per_connection; the
/// error (empty: none) names the file OpenSSL could not load.
std::string use_connection_identity(void* ssl, const TlsOptions& options);

}  // namespace fleettwin::mqtt
