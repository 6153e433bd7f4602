#include "codec/answers.h"

#include "codec/json.h"
#include "core/signals.h"

namespace fleettwin::codec {

namespace {

bool refuse(Refusal& why, const char* reason, std::string detail) {
  why.reason = reason;
  why.detail = std::move(detail);
  return false;
}

}  // namespace

bool valid_command_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxCommandIdLength) return false;
  for (const char c : id)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

bool command_id_names_car(std::string_view id, std::string_view car) {
  if (id.starts_with("service:")) id.remove_prefix(8);
  return id.size() > car.size() && id.starts_with(car) && id[car.size()] == ':';
}

bool safe_field_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool read_answer(std::string_view bytes, std::string_view key_car, core::CommandAck& out, Refusal& why) {
  if (bytes.size() > kMaxAnswerBytes)
    return refuse(why, "too_large",
                  std::to_string(bytes.size()) + " bytes, at most " + std::to_string(kMaxAnswerBytes));
  core::CommandAck a;
  std::string error;
  if (!command_ack_from_json(bytes, a, &error)) return refuse(why, "undecodable", error);
  // The key is the car of the topic the car published on; a payload naming another car is a car speaking
  // for another (the sink and the twin stage would otherwise settle that car's commands).
  if (!key_car.empty() && !a.car.empty() && a.car != key_car)
    return refuse(why, "bad_car_id",
                  "answer on the topic of car '" + std::string(key_car) + "' names car '" + a.car + "'");
  if (!key_car.empty()) a.car = std::string(key_car);
  if (!core::valid_car_id(a.car)) return refuse(why, "bad_car_id", "no valid car id");
  if (!valid_command_id(a.id)) return refuse(why, "invalid_answer", "id: 1..128 printable ASCII characters");
  if (a.reason.size() > kMaxAnswerReasonLength)
    return refuse(why, "invalid_answer", "reason: longer than " + std::to_string(kMaxAnswerReasonLength));
  // Only settings the platform knows, with values it could have asked for: these become twin fields (and
  // store field names) and are kept for ever, so nothing else gets in.
  for (const auto& [setting, value] : a.reported) {
    core::Command probe;
    if (!command_for_setting(setting, value, probe, &error))
      return refuse(why, "invalid_answer", "reported: " + error.substr(0, 200));
  }
  out = std::move(a);
  return true;
}

}  // namespace fleettwin::codec
