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
/// Window results of the aggregate stage, keyed "<aggregate>|<group>|<window_start>" (Avro AggregateResult).
inline constexpr const char* kAggregates = "fleet.aggregates";
/// The aggregate stage's changelog (compacted): each car's open windows, keyed by car, where a copy that
/// takes over a partition resumes (docs/architecture.md "Windows over time").
inline constexpr const char* kAggregatesState = "fleet.aggregates.state";
/// Group windows' partials (compacted): each source partition's share of a fleet or attribute window, keyed
/// "<aggregate>|<group>|<window_start>|<source>" and partitioned by "<aggregate>|<group>", where the copy of
/// the aggregate stage that holds the partition merges them (docs/architecture.md "Group windows").
inline constexpr const char* kAggregatesPartials = "fleet.aggregates.partials";

// Dead-letter queues: the DLQ of a topic is `<topic>.dlq` (stages::dlq_of). fleet.telemetry.dlq is the DLQ of
// fleet.telemetry.raw (process) and of fleet.telemetry (twin, score, sink) at once: both carry a car's
// telemetry, and their records tell apart by `error.stage` and `source.offset`. Provisioned with the other
// topics; `GET /api/v1/dlq` reads them all.
inline constexpr const char* kCommandsDlq = "fleet.commands.dlq";
inline constexpr const char* kCommandAcksDlq = "fleet.command-acks.dlq";
inline constexpr const char* kScoresDlq = "fleet.scores.dlq";
inline constexpr const char* kAlertsDlq = "fleet.alerts.dlq";
inline constexpr const char* kTwinsDlq = "fleet.twins.dlq";
inline constexpr const char* kAggregatesDlq = "fleet.aggregates.dlq";
/// Partials the aggregate stage's combiner cannot use (whatever the role's partials topic is called).
inline constexpr const char* kAggregatesPartialsDlq = "fleet.aggregates.partials.dlq";
/// Retrain requests on fleet.models the trainer cannot read.
inline constexpr const char* kModelsDlq = "fleet.models.dlq";
inline constexpr const char* kDlqTopics[] = {kTelemetryDlq,  kCommandsDlq, kCommandAcksDlq,
                                             kScoresDlq,     kAlertsDlq,   kTwinsDlq,
                                             kAggregatesDlq, kModelsDlq,   kAggregatesPartialsDlq};

// Headers.
inline constexpr const char* kHeaderErrorReason = "error.reason";
inline constexpr const char* kHeaderErrorStage = "error.stage";
inline constexpr const char* kHeaderErrorDetail = "error.detail";
inline constexpr const char* kHeaderMqttTopic = "mqtt.topic";
inline constexpr const char* kHeaderReceivedMs = "received.ms";
/// On central (`--sites`): the edge site a record came from, set by the stage runner on records of
/// `<site>.<topic>` before the stage sees them as `<topic>`.
inline constexpr const char* kHeaderSite = "fleettwin.site";
/// On a site's telemetry and scores replicated by fleettwin's uplink: the partition of the site's own topic
/// the record was read from (decimal). Central's Kafka partitions the copies by its own hash, so one central
/// partition mixes cars of several site partitions, each topic in the order the uplink read them; the
/// aggregate stage pairs a site's scores with its events per site partition, where the score stage's order
/// holds (stages::StatusMatcher). MirrorMaker 2 keeps partitions as they are and sets none.
inline constexpr const char* kHeaderSitePartition = "fleettwin.site.partition";

}  // namespace fleettwin::core::topics
