#pragma once

#include <chrono>
#include <set>
#include <vector>

#include "log/log.h"
#include "stages/aggregate/aggregate_stage.h"

namespace fleettwin::stages {

/// The compacted fleet.aggregates.state read to its end: the latest saved state of every car of the given
/// partition numbers, where an aggregate stage that gains those partitions resumes. A throwaway group that
/// never commits reads from the beginning (as read_twin_changelog; used on Kafka and in tests). Gives up
/// after `timeout` with what it read (those cars start empty, said in the log).
std::vector<AggregateSnapshot> read_aggregate_changelog(
    log::Log& log, const std::set<int32_t>& partitions,
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Embedded `up`: every car's state of `stage` written to `path` (replaced atomically), after a clean stop.
/// Throws std::runtime_error when the file cannot be written.
void write_aggregate_snapshot(const AggregateStage& stage, const std::string& path);
/// What write_aggregate_snapshot wrote to `path`, and the file removed: a snapshot is used once, so after a
/// crash of the run that read it (no new snapshot) the next run starts empty rather than from state older
/// than its input. Nothing when there is no file; what cannot be read is left out, with a warning.
std::vector<AggregateSnapshot> take_aggregate_snapshot(const std::string& path);

}  // namespace fleettwin::stages
