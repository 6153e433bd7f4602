#include "core/tokens.h"

#include "core/enum_names.h"

namespace fleettwin::core {

constexpr EnumName<Role> kRoleNames[] = {
    {Role::kViewer, "viewer"}, {Role::kOperator, "operator"}, {Role::kAdmin, "admin"}};

std::string_view to_string(Role role) { return name_of(kRoleNames, role, "viewer"); }

std::optional<Role> role_from_string(std::string_view text) { return parse(kRoleNames, text); }

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
      throw TokenError("token entry '" + std::string(entry.substr(0, 12)) +
                       "...': expected role:token (roles: viewer, operator, admin)");
    const auto role = role_from_string(trim(entry.substr(0, colon)));
    if (!role)
      throw TokenError("token entry: unknown role '" + std::string(trim(entry.substr(0, colon))) +
                       "' (roles: viewer, operator, admin)");
    const std::string token(trim(entry.substr(colon + 1)));
    if (token.size() < 8)
      throw TokenError("token for role " + std::string(to_string(*role)) + " is shorter than 8 characters");
    if (table.role_of(token)) throw TokenError("token given twice (roles must not share a token)");
    table.add(*role, token);
  }
  return table;
}

void TokenTable::add(Role role, std::string token) { _entries.emplace_back(std::move(token), role); }

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  return authorization.substr(0, kBearer.size()) == kBearer ? authorization.substr(kBearer.size())
                                                            : std::string_view{};
}

std::optional<Role> TokenTable::role_of(std::string_view token) const {
  std::optional<Role> found;
  for (const auto& [t, role] : _entries)
    if (constant_time_equal(t, token)) found = role;
  return found;
}

}  // namespace fleettwin::core
