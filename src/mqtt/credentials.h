#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace fleettwin::mqtt {

/// The bridge's MQTT user name (deploy/mosquitto/acl grants it every car's topics).
inline constexpr const char* kBridgeUser = "fleettwin-bridge";

/// MQTT credentials of a fleet, as written by `fleettwin sim credentials` into one directory:
///   secret           fleet secret (hex); a car's password is hex(HMAC-SHA256(secret, car id))[0..32), so the
///                    simulator (or a device provisioning tool) derives any car's password without a list
///   bridge-password  the bridge account's password
///   passwd           mosquitto password file (hashed by mosquitto_passwd) with every car and the bridge
///   acl              deploy/mosquitto/acl: each car only its own topics
/// Plain value; any thread.
struct Credentials {
  std::string secret;
  std::string bridge_password;

  /// Reads `dir`; throws std::runtime_error naming the missing or unreadable file.
  static Credentials load(const std::string& dir);
  std::string car_password(std::string_view car) const;
};

/// Writes a credentials directory for `cars` ids (`car_id(i)`), with a fresh random secret. `acl_template` is
/// the ACL file to copy (deploy/mosquitto/acl). Runs mosquitto_passwd -U to hash the password file: the
/// broker's own tool writes the broker's format. `progress(done, total)` is called now and then.
void write_credentials(const std::string& dir, std::size_t cars,
                       const std::function<std::string(std::size_t)>& car_id, const std::string& acl_template,
                       const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace fleettwin::mqtt
