#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::mqtt {

/// Where a certificate credentials directory (`fleettwin sim credentials --certs`) keeps each file:
///   ca.crt                 the fleet CA: brokers trust client certificates it signed; clients trust the
///   broker's private/ca.key         the CA's key, in a directory of its own (0700) so it is easy to move
///   offline: whoever
///                          holds it can mint any identity, the bridge's included; nothing here reads it
///                          again
///   server.crt server.key  the brokers' certificate (subjectAltName: the names given, default localhost and
///                          127.0.0.1), signed by the fleet CA
///   bridge.crt bridge.key  the bridge's client certificate, CN `fleettwin-bridge` (kBridgeUser)
///   cars/<id>.crt .key     one client certificate per car, CN = car id
///   acl                    deploy/mosquitto/acl: with use_identity_as_username the CN is the user name
///   mosquitto.conf         the lines a broker's listener needs (broker_auth_config)
/// Plain value; any thread.
struct CertificatePaths {
  std::filesystem::path dir;
  std::filesystem::path ca_crt() const { return dir / "ca.crt"; }
  std::filesystem::path ca_key() const { return dir / "private" / "ca.key"; }
  std::filesystem::path server_crt() const { return dir / "server.crt"; }
  std::filesystem::path server_key() const { return dir / "server.key"; }
  std::filesystem::path bridge_crt() const { return dir / "bridge.crt"; }
  std::filesystem::path bridge_key() const { return dir / "bridge.key"; }
  std::filesystem::path car_crt(std::string_view car) const;
  std::filesystem::path car_key(std::string_view car) const;
  /// A directory holds certificate credentials when it has a CA certificate (password credentials have none);
  /// a copy may hold only what its host needs (a broker: no car keys; a car: its own).
  bool present() const;
};

/// Why `car` cannot be a car's identity (empty: it can). A car id becomes a certificate CN, an MQTT user name
/// substituted into ACL patterns and a file name, so only [A-Za-z0-9_.-], 1..64 characters, not starting with
/// '.', and never the bridge's identity (or anything starting with it): no certificate the fleet CA signs for
/// a car can act as the bridge.
std::string car_id_problem(std::string_view car);

/// What write_certificates needs besides the directory. Plain value.
struct CertificateRequest {
  std::size_t cars = 0;
  std::function<std::string(std::size_t)> car_id;
  std::string acl_template;  ///< copied to acl (deploy/mosquitto/acl)
  std::vector<std::string> server_names = {"localhost", "127.0.0.1"};  ///< broker SANs (IP or DNS)
  int days = 825;                                                      ///< validity of every certificate
  std::size_t threads = 0;                                             ///< 0: one per core
  std::function<void(std::size_t done, std::size_t total)> progress;   ///< called about 10 times a second
};

/// Writes a certificate credentials directory (layout: CertificatePaths): a fresh fleet CA (EC P-256), the
/// broker's, the bridge's and one certificate per car, the ACL and the broker config lines. Keys are 0600.
/// Cars are generated on `threads` threads; progress is reported from the calling thread. Throws
/// std::runtime_error (a bad car id, an OpenSSL failure, a file that cannot be written).
void write_certificates(const std::string& dir, const CertificateRequest& request);

}  // namespace fleettwin::mqtt
