#pragma once

#include <map>
#include <string>
#include <string_view>

#include "codec/answers.h"
#include "codec/schemas.h"
#include "core/alert.h"
#include "core/telemetry.h"
#include "log/log.h"
#include "registry/telemetry_reader.h"

namespace fleettwin::stages {

// Checks the twin, aggregate and sink stages share on the records they read: what makes a record unusable,
// and the stable DLQ reason for it (docs/architecture.md, "Dead letters").

/// Reads a fleet.commands record into `c` (its car from the key when the payload names none) and the settings
/// it asks for. False with `why`: `undecodable`, `bad_car_id` (the payload names another car than the key,
/// or no valid car), `invalid_command` (an id the platform cannot keep) or `unknown_command` (a command or
/// parameters the settings table does not know).
bool read_command(const log::Record& r, core::Command& c, std::map<std::string, std::string>& settings,
                  codec::Refusal& why);

/// False with reason `bad_car_id` when the record's key (the car every stage routes by) is set and is not
/// `car`, the car the payload names: a record of one car keyed as another would change the wrong twin.
bool key_matches(const log::Record& r, std::string_view car, codec::Refusal& why);

/// Reads a fleet.telemetry record into `t` (the reader checks its writer schema) and checks its key. False
/// with `why`: the reader's reason (`undecodable`, `unknown_schema`) or `bad_car_id`. The stages that read
/// telemetry (twin, aggregate) send such a record to their DLQ with that reason.
bool read_telemetry(const log::Record& r, registry::TelemetryReader& reader, core::Telemetry& t,
                    codec::Refusal& why);

/// Reads a fleet.scores record into `s` and checks its key. False with `why`: `undecodable` or `bad_car_id`.
/// The stages that read scores (twin, aggregate) send such a record to their DLQ with that reason.
bool read_score(const log::Record& r, codec::AnomalyScore& s, codec::Refusal& why);

/// The key of an answer the stages keep until its command arrives: answers are per car, so one car's answer
/// never stands in for, nor crowds out, another car's answer to the same id.
inline std::string answer_key(std::string_view car, std::string_view id) {
  std::string k(car);
  k += '\n';
  k += id;
  return k;
}

}  // namespace fleettwin::stages
