#include "api/auth.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/enum_names.h"

namespace fleettwin::api {

constexpr core::EnumName<Role> kRoleNames[] = {
    {Role::kViewer, "viewer"}, {Role::kOperator, "operator"}, {Role::kAdmin, "admin"}};

std::string_view to_string(Role role) { return core::name_of(kRoleNames, role, "viewer"); }

std::optional<Role> role_from_string(std::string_view text) { return core::parse(kRoleNames, text); }

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  return diff == 0;
}

}  // namespace

TokenTable TokenTable::parse(std::string_view text) {
  TokenTable table;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view entry = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (entry.empty()) continue;
    const auto colon = entry.find(':');
    if (colon == std::string_view::npos)
      throw TokenError("API token entry '" + std::string(entry.substr(0, 12)) +
                       "...': expected role:token (roles: viewer, operator, admin)");
    const auto role = role_from_string(trim(entry.substr(0, colon)));
    if (!role)
      throw TokenError("API token entry: unknown role '" + std::string(trim(entry.substr(0, colon))) +
                       "' (roles: viewer, operator, admin)");
    const std::string token(trim(entry.substr(colon + 1)));
    if (token.size() < 8)
      throw TokenError("API token for role " + std::string(to_string(*role)) +
                       " is shorter than 8 characters");
    if (table.role_of(token)) throw TokenError("API token given twice (roles must not share a token)");
    table.add(*role, token);
  }
  return table;
}

void TokenTable::add(Role role, std::string token) { _entries.emplace_back(std::move(token), role); }

std::optional<Role> TokenTable::role_of(std::string_view token) const {
  std::optional<Role> found;
  for (const auto& [t, role] : _entries)
    if (constant_time_equal(t, token)) found = role;
  return found;
}

std::string load_or_create_admin_token(const std::string& data_dir) {
  const auto path = std::filesystem::path(data_dir) / "api-token";
  if (std::ifstream in(path); in) {
    std::string token;
    std::getline(in, token);
    if (token.size() >= 8) return token;
  }
  std::random_device rd;  // /dev/urandom on Linux
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 32; ++i) token.push_back(kHex[rd() & 15u]);
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
