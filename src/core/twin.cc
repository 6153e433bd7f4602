#include "core/twin.h"

#include <cmath>

#include "core/enum_names.h"

namespace fleettwin::core {

constexpr EnumName<HealthStatus> kHealthStatusNames[] = {{HealthStatus::kUnknown, "unknown"},
                                                         {HealthStatus::kOk, "ok"},
                                                         {HealthStatus::kWarning, "warning"},
                                                         {HealthStatus::kAnomaly, "anomaly"}};

std::string_view to_string(HealthStatus s) { return name_of(kHealthStatusNames, s, "unknown"); }

HealthStatus health_status_from_string(std::string_view s) {
  return parse(kHealthStatusNames, s).value_or(HealthStatus::kUnknown);
}

HealthStatus score_status(double score, double threshold, bool in_alert) {
  if (in_alert) return HealthStatus::kAnomaly;
  return score > threshold ? HealthStatus::kWarning : HealthStatus::kOk;
}

std::vector<std::string> Twin::delta() const {
  std::vector<std::string> out;
  for (const auto& [key, value] : desired) {
    auto it = reported_settings.find(key);
    if (it == reported_settings.end() || it->second != value) out.push_back(key);
  }
  return out;
}

double haversine_km(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kEarthRadiusKm = 6371.0088;
  constexpr double kRad = 3.14159265358979323846 / 180.0;
  const double dlat = (lat2 - lat1) * kRad;
  const double dlon = (lon2 - lon1) * kRad;
  const double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
                   std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthRadiusKm * std::asin(std::min(1.0, std::sqrt(a)));
}

namespace {

// The reported state after `t`: what `t` carries replaces, what it lacks stays (with its time and flag).
void merge_reported(Twin& twin, const Telemetry& t) {
  Telemetry& r = twin.reported;
  const std::size_t n = t.values.size();
  r.values.resize(n, kAbsent);
  twin.metadata.resize(n, 0);
  std::vector<uint16_t> flags;
  for (std::size_t i = 0; i < n; ++i) {
    if (!absent(t.values[i])) {
      r.values[i] = t.values[i];
      twin.metadata[i] = t.ts;
      if (t.flagged(i)) flags.push_back(static_cast<uint16_t>(i));
    } else if (!absent(r.values[i]) && r.flagged(i)) {
      flags.push_back(static_cast<uint16_t>(i));
    }
  }
  r.out_of_range = std::move(flags);
  if (t.has_position()) {
    r.lat = t.lat;
    r.lon = t.lon;
  }
  r.car = t.car;
  r.ts = t.ts;
  r.seq = t.seq;
}

}  // namespace

bool apply_telemetry(Twin& twin, const Telemetry& t) {
  if (twin.has_reported && t.seq <= twin.reported.seq) return false;
  if (twin.id.empty()) twin.id = t.car;
  if (twin.has_reported && twin.reported.has_position() && t.has_position()) {
    twin.distance_km += haversine_km(twin.reported.lat, twin.reported.lon, t.lat, t.lon);
  }
  if (twin.first_seen == 0 || t.ts < twin.first_seen) twin.first_seen = t.ts;
  twin.last_seen = std::max(twin.last_seen, t.ts);
  merge_reported(twin, t);
  twin.has_reported = true;
  twin.online = true;
  ++twin.messages;
  ++twin.version;
  return true;
}

bool mark_offline_if_silent(Twin& twin, int64_t now_ms, int64_t offline_after_ms) {
  if (!twin.online || now_ms - twin.last_seen <= offline_after_ms) return false;
  twin.online = false;
  ++twin.version;
  return true;
}

}  // namespace fleettwin::core
