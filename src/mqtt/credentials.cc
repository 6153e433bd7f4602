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

}  // namespace

Credentials Credentials::load(const std::string& dir) {
  const std::filesystem::path d(dir);
  return Credentials{read_line(d / "secret"), read_line(d / "bridge-password")};
}

std::string Credentials::car_password(std::string_view car) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(car.data()), car.size(), mac, &len);
  return core::to_hex({reinterpret_cast<const char*>(mac), len}).substr(0, 32);
}

void write_credentials(const std::string& dir, std::size_t cars,
                       const std::function<std::string(std::size_t)>& car_id, const std::string& acl_template,
                       const std::function<void(std::size_t, std::size_t)>& progress) {
  const std::filesystem::path d(dir);
  std::filesystem::create_directories(d);
  Credentials c{random_hex(32), random_hex(16)};
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
