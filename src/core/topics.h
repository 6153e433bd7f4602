#pragma once

#include <string_view>

namespace fleettwin::core::topics {

// The topics of DESIGN.md §4; every stage and adapter names them from here.
inline constexpr const char* kTelemetryRaw = "fleet.telemetry.raw";
inline constexpr const char* kTelemetry = "fleet.telemetry";
inline constexpr const char* kTelemetryDlq = "fleet.telemetry.dlq";
inline constexpr const char* kScores = "fleet.scores";
inline constexpr const char* kAlerts = "fleet.alerts";
inline constexpr const char* kCommands = "fleet.commands";
inline constexpr const char* kCommandAcks = "fleet.command-acks";
inline constexpr const char* kTwins = "fleet.twins";
inline constexpr const char* kModels = "fleet.models";

// Headers.
inline constexpr const char* kHeaderErrorReason = "error.reason";
inline constexpr const char* kHeaderErrorStage = "error.stage";
inline constexpr const char* kHeaderErrorDetail = "error.detail";
inline constexpr const char* kHeaderMqttTopic = "mqtt.topic";
inline constexpr const char* kHeaderReceivedMs = "received.ms";

}  // namespace fleettwin::core::topics
