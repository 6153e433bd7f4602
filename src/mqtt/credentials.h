#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "mqtt/tls.h"

namespace fleettwin::mqtt {

/// The bridge's MQTT user name (deploy/mosquitto/acl grants it every car's topics).
inline constexpr const char* kBridgeUser = "fleettwin-bridge";

/// MQTT credentials of a fleet, as written by `fleettwin sim credentials` into one directory:
///   secret           fleet secret (hex); a car's password is hex(HMAC-SHA256(secret, car id))[0..32), so the
///                    simulator (or a device provisioning tool) derives any car's password without a list
///   bridge-password  the bridge account's password
///   passwd           mosquitto password file (hashed by mosquitto_passwd) with every car and the bridge
///   acl              deploy/mosquitto/acl: each car only its own topics
/// Or certificates, as written by `fleettwin sim credentials --certs` (layout: mqtt/certificates.h): then
/// `certificates()`: every client presents its own certificate and the broker takes the user name from its
/// CN. Plain value; any thread.
struct Credentials {
  std::string secret;
  std::string bridge_password;
  std::string dir;                 ///< absolute
  bool with_certificates = false;  ///< certificate credentials (secret and bridge_password are empty)

  /// Reads `dir` (either kind); throws std::runtime_error naming the missing or unreadable file.
  static Credentials load(const std::string& dir);
  bool certificates() const { return with_certificates; }
  std::string car_password(std::string_view car) const;
  /// TLS of car `car` (certificates): the fleet CA unless `base` names one, the car's own certificate loaded
  /// per connection (one TLS context for every car of a process, not one each).
  TlsOptions car_tls(std::string_view car, const TlsOptions& base) const;
  /// TLS of the bridge (certificates): the fleet CA unless `base` names one, the bridge's certificate.
  TlsOptions bridge_tls(const TlsOptions& base) const;
  /// A tag only the holder of the bridge's secret (its password or private key) can compute. The bridge adds
  /// it to its client ids: a car that could guess them could connect under one and take over the bridge's
  /// session (the broker hands a client id to whoever presents it last, whatever its user).
  std::string bridge_tag() const;
};

/// The broker config lines that make a listener authenticate every client with these credentials and apply
/// the ACL (allow_anonymous false, acl_file, and password_file or the TLS and require_certificate settings).
/// Appended after the `listener` line they apply to (with per_listener_settings false, to every listener).
std::string broker_auth_config(const Credentials& credentials);

/// Writes a credentials directory for `cars` ids (`car_id(i)`), with a fresh random secret. `acl_template` is
/// the ACL file to copy (deploy/mosquitto/acl). Runs mosquitto_passwd -U to hash the password file: the
/// broker's own tool writes the broker's format. `progress(done, total)` is called now and then.
void write_credentials(const std::string& dir, std::size_t cars,
                       const std::function<std::string(std::size_t)>& car_id, const std::string& acl_template,
                       const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace fleettwin::mqtt
