#include "api/auth.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace fleettwin::api {

std::string random_token() {
  std::random_device rd;  // /dev/urandom on Linux
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 32; ++i) token.push_back(kHex[rd() & 15u]);
  return token;
}

std::string load_or_create_admin_token(const std::string& data_dir) {
  const auto path = std::filesystem::path(data_dir) / "api-token";
  if (std::ifstream in(path); in) {
    std::string token;
    std::getline(in, token);
    if (token.size() >= 8) return token;
  }
  const std::string token = random_token();
  std::filesystem::create_directories(data_dir);
  {
    std::ofstream out(path, std::ios::trunc);
    out << token << '\n';
    if (!out) throw std::runtime_error("cannot write " + path.string());
  }
  ::chmod(path.c_str(), 0600);
  return token;
}

}  // namespace fleettwin::api
