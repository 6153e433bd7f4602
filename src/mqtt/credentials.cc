#include "mqtt/credentials.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/hex.h"
#include "mqtt/certificates.h"

namespace fleettwin::mqtt {

namespace {

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("no randomness for the fleet secret (RAND_bytes failed)");
  return core::to_hex(raw);
}

std::string read_line(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty())
    throw std::runtime_error("cannot read " + p.string() + " (write it with `fleettwin sim credentials`)");
  return line;
}

void write_private(const std::filesystem::path& p, const std::string& text) {
  {
    std::ofstream out(p, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + p.string());
  }
  ::chmod(p.c_str(), 0600);
}

std::string hmac_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return core::to_hex({reinterpret_cast<const char*>(mac), len});
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) throw std::runtime_error("cannot read " + p.string());
  return text.str();
}

}  // namespace

Credentials Credentials::load(const std::string& dir) {
  const auto d = std::filesystem::absolute(dir);
  Credentials c;
  c.dir = d.string();
  const CertificatePaths certs{d};
  // Only what every user of the directory needs: a simulator host holds no broker key, a broker no car keys;
  // a file that is missing where it is needed is named when OpenSSL or mosquitto fails to load it.
  if (certs.present()) {
    c.with_certificates = true;
    return c;
  }
  c.secret = read_line(d / "secret");
  c.bridge_password = read_line(d / "bridge-password");
  return c;
}

std::string Credentials::car_password(std::string_view car) const {
  return hmac_hex(secret, car).substr(0, 32);
}

TlsOptions Credentials::car_tls(std::string_view car, const TlsOptions& base) const {
  const CertificatePaths p{dir};
  TlsOptions o = base;
  if (o.ca_file.empty()) o.ca_file = p.ca_crt().string();
  o.cert_file = p.car_crt(car).string();
  o.key_file = p.car_key(car).string();
  o.identity_per_connection = true;
  return o;
}

TlsOptions Credentials::bridge_tls(const TlsOptions& base) const {
  const CertificatePaths p{dir};
  TlsOptions o = base;
  if (o.ca_file.empty()) o.ca_file = p.ca_crt().string();
  o.cert_file = p.bridge_crt().string();
  o.key_file = p.bridge_key().string();
  return o;
}

std::string Credentials::bridge_tag() const {
  // The bridge's key file is as secret as its password; neither leaves the bridge's machines.
  const std::string key = certificates() ? read_all(CertificatePaths{dir}.bridge_key()) : bridge_password;
  return hmac_hex(key, "fleettwin bridge client id").substr(0, 16);
}

std::string broker_auth_config(const Credentials& c) {
  const std::filesystem::path d(c.dir);
  std::string out = "# fleettwin: every client authenticates, the ACL confines each car to its own topics\n";
  out += "allow_anonymous false\nacl_file " + (d / "acl").string() + "\n";
  if (!c.certificates()) return out + "password_file " + (d / "passwd").string() + "\n";
  // TLS with client certificates signed by the fleet CA; the CN is the user name the ACL's %u stands for,
  // so a car's identity is its certificate and no password exists to steal or guess.
  const CertificatePaths p{d};
  return out + "cafile " + p.ca_crt().string() + "\ncertfile " + p.server_crt().string() + "\nkeyfile " +
         p.server_key().string() + "\nrequire_certificate true\nuse_identity_as_username true\n";
}

void write_credentials(const std::string& dir, std::size_t cars,
                       const std::function<std::string(std::size_t)>& car_id, const std::string& acl_template,
                       const std::function<void(std::size_t, std::size_t)>& progress) {
  const std::filesystem::path d(dir);
  std::filesystem::create_directories(d);
  Credentials c;
  c.dir = std::filesystem::absolute(d).string();
  c.secret = random_hex(32);
  c.bridge_password = random_hex(16);
  write_private(d / "secret", c.secret + "\n");
  write_private(d / "bridge-password", c.bridge_password + "\n");
  std::filesystem::copy_file(acl_template, d / "acl", std::filesystem::copy_options::overwrite_existing);
  {
    std::ofstream out(d / "passwd", std::ios::trunc);
    out << kBridgeUser << ':' << c.bridge_password << '\n';
    for (std::size_t i = 0; i < cars; ++i) {
      const std::string id = car_id(i);
      out << id << ':' << c.car_password(id) << '\n';
      if (progress && (i % 10000 == 0)) progress(i, cars);
    }
    if (!out) throw std::runtime_error("cannot write " + (d / "passwd").string());
  }
  ::chmod((d / "passwd").c_str(), 0600);
  if (progress) progress(cars, cars);
  {
    std::ofstream conf(d / "mosquitto.conf", std::ios::trunc);
    conf << broker_auth_config(c);
  }
  // Hashing with the broker's tool keeps the file in exactly the format (and KDF) the broker expects.
  // Run directly, not through a shell: the directory is the user's and may hold any character.
  const std::string path = (d / "passwd").string();
  std::string tool = "mosquitto_passwd", flag = "-U";
  char* argv[] = {tool.data(), flag.data(), const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = 0;
  int status = 0;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv, environ) != 0 || waitpid(pid, &status, 0) != pid ||
      !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("`mosquitto_passwd -U " + path +
                             "` failed (is the mosquitto package installed?)");
  }
}

}  // namespace fleettwin::mqtt
