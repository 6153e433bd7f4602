#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/alert.h"
#include "core/twin.h"

namespace fleettwin::api {

/// A request the API refuses or cannot serve: the HTTP status and a message for the JSON error body.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

/// The desired settings an operator may set on a car (PATCH /twins/{car}/desired), each turned into one
/// command on fleet.commands; the table of settings and commands is codec::command_for_setting (json.h).
/// One command per setting in `body` (a JSON object) whose value differs from `twin.desired`. Throws
/// ApiError(400) for a body that is not an object, an unknown setting, a setting given twice, or a value of
/// the wrong type or out of range (naming the setting). Each command expires core::kDefaultCommandTtlMs
/// after `now_ms`. Ids are "{car}:{command}:{now_ms}:{n}" with n from `sequence`, unique
/// per process and, with the time, across restarts.
std::vector<core::Command> commands_for_settings(const core::Twin& twin, std::string_view body,
                                                 int64_t now_ms, uint64_t sequence);

}  // namespace fleettwin::api
