#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/alert.h"

namespace fleettwin::codec {

// What a car may say in an answer (fleet/{car}/acks -> fleet.command-acks). Answers come from outside the
// platform, so they are checked as telemetry is: their size, their ids, their car, and every setting they
// report. What passes is safe to keep in memory (bounded), to merge into a twin, and to write into any store
// (its setting names become document field names in MongoDB).

/// Largest answer accepted, in bytes (an honest answer is under 300).
inline constexpr std::size_t kMaxAnswerBytes = 4096;
/// Longest command id accepted in an answer (the platform's ids are under 100 characters).
inline constexpr std::size_t kMaxCommandIdLength = 128;
/// Longest `reason` text accepted in an answer.
inline constexpr std::size_t kMaxAnswerReasonLength = 512;

/// Why a record was refused: `reason` is the stable DLQ reason (a metric label), `detail` one line for
/// people.
struct Refusal {
  std::string reason;
  std::string detail;
};

/// Decodes and checks one fleet.command-acks record. `key_car` is the record's key: the car of the MQTT topic
/// the bridge read it from (the broker's ACL vouches for it), or empty for a record without a key. The
/// answer's own `car`, when present, must be that car; `out.car` is set to it. Every `reported` setting must
/// be a known setting with a valid value (command_for_setting). False with `why` set: reason `too_large`,
/// `undecodable`, `bad_car_id` or `invalid_answer`.
bool read_answer(std::string_view bytes, std::string_view key_car, core::CommandAck& out, Refusal& why);

/// True when `id` is a command id the platform can keep: 1..kMaxCommandIdLength printable ASCII characters.
bool valid_command_id(std::string_view id);

/// True when the command id `id` names `car` the way the platform's ids do: "{car}:..." (the API) or
/// "service:{car}:..." (the score stage's service requests). A store keeps an answer read before its command
/// under the command's id only when the id names the answering car, so no car can take the id of another
/// car's command before that command is stored.
bool command_id_names_car(std::string_view id, std::string_view car);

/// True when `name`, a key that came from outside, may become a store field name as it is: 1..64 characters
/// of [A-Za-z0-9_] (no `.`, which MongoDB reads as a path, no leading `$`, which it reads as an operator).
bool safe_field_name(std::string_view name);

}  // namespace fleettwin::codec
