#include "stages/record_checks.h"

#include "codec/json.h"
#include "core/signals.h"

namespace fleettwin::stages {

namespace {

bool refuse(codec::Refusal& why, const char* reason, std::string detail) {
  why.reason = reason;
  why.detail = std::move(detail);
  return false;
}

}  // namespace

bool key_matches(const log::Record& r, std::string_view car, codec::Refusal& why) {
  if (r.key.empty() || r.key == car) return true;
  return refuse(why, "bad_car_id",
                "record key '" + r.key + "' does not match car '" + std::string(car) + "'");
}

bool read_telemetry(const log::Record& r, registry::TelemetryReader& reader, core::Telemetry& t,
                    codec::Refusal& why) {
  std::string error;
  if (!reader.read(r.value, t, &error)) return refuse(why, reader.failure_reason(), std::move(error));
  return key_matches(r, t.car, why);
}

bool read_score(const log::Record& r, codec::AnomalyScore& s, codec::Refusal& why) {
  std::string error;
  if (!codec::decode_avro_anomaly_score(r.value, s, nullptr, &error))
    return refuse(why, "undecodable", std::move(error));
  return key_matches(r, s.car, why);
}

bool read_command(const log::Record& r, core::Command& c, std::map<std::string, std::string>& settings,
                  codec::Refusal& why) {
  std::string error;
  if (!codec::command_from_json(r.value, c, &error)) return refuse(why, "undecodable", error);
  if (c.car.empty()) c.car = r.key;
  if (!key_matches(r, c.car, why)) return false;
  if (!core::valid_car_id(c.car)) return refuse(why, "bad_car_id", "no valid car id");
  if (!codec::valid_command_id(c.id))
    return refuse(why, "invalid_command", "_id: 1..128 printable ASCII characters");
  if (!codec::command_settings(c, settings, &error)) return refuse(why, "unknown_command", error);
  return true;
}

}  // namespace fleettwin::stages
