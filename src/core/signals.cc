#include "core/signals.h"

namespace fleettwin::core {

std::optional<std::size_t> signal_index(std::string_view name) {
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    if (kSignals[i].name == name) return i;
  }
  return std::nullopt;
}

bool valid_car_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxCarIdLength) return false;
  for (char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace fleettwin::core
