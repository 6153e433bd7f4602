#pragma once

#include <memory>
#include <string>

namespace fleettwin::mqtt {

/// TLS settings of an MQTT connection (our client and libmosquitto's alike). Plain value.
struct TlsOptions {
  std::string ca_file;  ///< empty: no TLS
  std::string cert_file;
  std::string key_file;
  bool insecure = false;  ///< skip the server hostname check (test setups with self-made certificates)
};

/// An OpenSSL client context for `options`, shared by every connection with the same options (one per
/// fleet, not one per car). Throws std::runtime_error naming the file OpenSSL could not load. Any thread.
std::shared_ptr<void> tls_context(const TlsOptions& options);

}  // namespace fleettwin::mqtt
