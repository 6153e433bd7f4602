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
  /// An operator's verdict (POST /api/v1/alerts/{id}/feedback): "" none yet, kFeedbackConfirmed or
  /// kFeedbackFalse, with a note and when it was given (ms, wall clock). Set in the store only, never on the
  /// log: an alert's later states written by the sink leave it as it is.
  std::string feedback;
  std::string feedback_note;
  int64_t feedback_ts = 0;
  bool operator==(const Alert&) const = default;
};

inline constexpr const char* kFeedbackConfirmed = "confirmed";
inline constexpr const char* kFeedbackFalse = "false";
/// Longest operator note kept with a label (bytes).
inline constexpr std::size_t kMaxFeedbackNote = 1000;

/// Operator labels of one model version's alerts: the live precision confirmed / (confirmed + false).
/// Plain value.
struct FeedbackCounts {
  int64_t confirmed = 0;
  int64_t false_alarms = 0;
  bool operator==(const FeedbackCounts&) const = default;
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
