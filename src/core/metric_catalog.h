#pragma once

#include <string>
#include <string_view>

#include "core/metrics.h"

/// The metrics that a module other than the one that writes them reads: the run summary and progress line
/// (app), the API's fleet summary, the benchmarks. Writer and readers name the same constant, so a renamed
/// or misspelt metric does not compile. A metric only its own module reads is declared where it is written.
namespace fleettwin::core::metric {

// Per stage, labelled with stage_label(name) by the StageRunner.
inline constexpr MetricDef kRecordsIn{"fleettwin_records_in_total",
                                      "Records a stage read from its input topics"};
inline constexpr MetricDef kConsumerLag{"fleettwin_consumer_lag",
                                        "Records behind the end of the input partitions"};
inline constexpr MetricDef kRecordsSkipped{
    "fleettwin_records_skipped_total",
    "Input records a stage allowed to lag never read: the embedded log evicted them first"};

// The simulator.
inline constexpr MetricDef kSimPublished{"fleettwin_sim_published_total",
                                         "Telemetry messages the simulator published"};
inline constexpr MetricDef kSimInjectedInvalid{"fleettwin_sim_injected_invalid_total",
                                               "Malformed payloads injected on purpose"};
inline constexpr MetricDef kSimFailures{"fleettwin_sim_failures_total",
                                        "Failures that began in simulated cars"};

// process, twin, sink.
inline constexpr MetricDef kTelemetryValid{"fleettwin_telemetry_valid_total",
                                           "Telemetry messages accepted by process"};
inline constexpr MetricDef kSignalOutOfRange{
    "fleettwin_signal_out_of_range_total", "Readings outside their signal's plausible range (kept, flagged)"};
inline constexpr MetricDef kUnknownFields{"fleettwin_unknown_fields_total",
                                          "Payload keys the catalog does not know (dropped), by key"};
inline constexpr MetricDef kDlq{"fleettwin_dlq_total", "Records sent to the dead-letter queue"};
inline constexpr MetricDef kCarsOnline{"fleettwin_cars_online", "Cars whose twin is online"};
inline constexpr MetricDef kTelemetryStored{"fleettwin_telemetry_stored_total",
                                            "Telemetry rows inserted into the store"};
inline constexpr MetricDef kTwinWrites{"fleettwin_twin_writes_total", "Twin upserts applied by the store"};

// score and its model watcher.
inline constexpr MetricDef kModelsLoaded{"fleettwin_models_loaded_total",
                                         "Model artifacts loaded from fleet.models"};
inline constexpr MetricDef kModelsRejected{"fleettwin_models_rejected_total",
                                           "fleet.models records that were not a model"};
inline constexpr MetricDef kScoreScored{"fleettwin_score_scored_total", "Events scored by the active model"};
inline constexpr MetricDef kScoreUnscored{
    "fleettwin_score_unscored_total",
    "Events never scored: before any model, beyond the held bound, held at a stop, or skipped while behind"};
inline constexpr MetricDef kScoreUndecodable{"fleettwin_score_undecodable_total",
                                             "fleet.telemetry records the score stage could not decode"};
/// Drift watch (gauges with 4 decimals: Metrics::fixed_point_gauge; value() reads PSI x 10^4).
inline constexpr MetricDef kDriftPsi{"fleettwin_drift_psi",
                                     "PSI of each signal's live values (sliding window) against the active "
                                     "model's training data"};
inline constexpr MetricDef kDriftPsiMax{"fleettwin_drift_psi_max",
                                        "Largest per-signal PSI of live traffic against the training data"};
inline constexpr int kDriftDecimals = 4;
inline constexpr MetricDef kDriftRetrainRequests{"fleettwin_drift_retrain_requests_total",
                                                 "Retrain requests the drift watch wrote to fleet.models"};
inline constexpr MetricDef kAlerts{"fleettwin_alerts_total", "Alerts raised and cleared"};
inline const std::string kAlertRaised = "event=\"raised\"";
inline const std::string kAlertCleared = "event=\"cleared\"";

// `fleettwin registry` (the schema registry role).
inline constexpr MetricDef kRegistryRequests{"fleettwin_registry_requests_total",
                                             "HTTP requests the schema registry answered"};
inline constexpr MetricDef kRegistrySubjects{"fleettwin_registry_subjects", "Subjects the registry holds"};

// The MQTT bridge.
inline constexpr MetricDef kBridgeTelemetry{"fleettwin_bridge_telemetry_total",
                                            "MQTT telemetry messages written to the log"};

// The uplink of an edge site (app/uplink.h): the progress line and the API read these.
inline constexpr MetricDef kUplinkSpoolBytes{"fleettwin_uplink_spool_bytes",
                                             "Bytes the uplink spool holds for central (uplink.disk_budget)"};
inline constexpr MetricDef kUplinkSpoolBudget{"fleettwin_uplink_spool_budget_bytes",
                                              "The uplink spool's disk budget (uplink.disk_budget)"};
inline constexpr MetricDef kUplinkState{
    "fleettwin_uplink_state",
    "Uplink state: 0 live, 1 spooling (central unreachable), 2 full (cars held back)"};
inline constexpr MetricDef kUplinkEnabled{"fleettwin_uplink_enabled",
                                          "1 when this process is an edge site that replicates to central"};
inline constexpr MetricDef kUplinkSent{"fleettwin_uplink_sent_total", "Spooled records central acknowledged"};

/// The label that tells one stage's copy of a per-stage metric from another's.
inline std::string stage_label(std::string_view stage) { return "stage=\"" + std::string(stage) + "\""; }

}  // namespace fleettwin::core::metric
