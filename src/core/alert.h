#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fleettwin::core {

/// An anomaly alert raised or cleared by the score stage for one car. Plain value.
struct Alert {
  std::string id;  ///< deterministic: "{car}:{kind}:{raised_ts}"
  std::string car;
  std::string kind;    ///< e.g. "anomaly"
  bool raised = true;  ///< false: the alert was cleared
  int64_t ts = 0;      ///< ms, device time of the event that raised or cleared it
  double score = 0;
  double threshold = 0;
  std::vector<std::string> signals;  ///< top contributing signals
  std::string model_version;
  bool acknowledged = false;
  bool operator==(const Alert&) const = default;
};

/// A command sent to a car (fleet/{car}/commands). Plain value.
struct Command {
  std::string id;
  std::string car;
  std::string name;                ///< e.g. "set", "schedule_service"
  std::string params_json;         ///< JSON object text
  int64_t created = 0;             ///< ms
  int64_t expires = 0;             ///< ms; 0 = never
  std::string status = "pending";  ///< pending | delivered | acked | failed | expired
  bool operator==(const Command&) const = default;
};

/// A car's answer to a command (fleet/{car}/acks -> fleet.command-acks), or the bridge's verdict on a command
/// that expired before it could be sent. Plain value.
struct CommandAck {
  std::string id;  ///< the command's id
  std::string car;
  std::string status;                           ///< acked | failed | expired
  int64_t ts = 0;                               ///< ms
  std::map<std::string, std::string> reported;  ///< the car's settings after the command (name -> JSON text)
  std::string reason;                           ///< why, when failed or expired
  bool operator==(const CommandAck&) const = default;
};

/// How long a command without an expiry of its own stays pending: every command expires, so a car that never
/// answers cannot keep commands (and their desired settings) pending for ever. The API sets it on the
/// commands it creates; the twin stage gives it to any command that arrives without one.
inline constexpr int64_t kDefaultCommandTtlMs = 24LL * 3600 * 1000;
/// Answers read before their command are kept (twin stage, sink) at most this many per car, for at most
/// kEarlyAnswerTtlMs: an answer whose command never comes is a car answering what nobody asked.
inline constexpr std::size_t kMaxEarlyAnswersPerCar = 16;
inline constexpr int64_t kEarlyAnswerTtlMs = 3600LL * 1000;

}  // namespace fleettwin::core
