#pragma once

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "core/topics.h"
#include "log/log.h"
#include "stages/aggregate/aggregate_stage.h"

namespace fleettwin::stages {

/// The compacted fleet.aggregates.state read to its end: the latest saved state of every car of the given
/// partition numbers, where an aggregate stage that gains those partitions resumes. A throwaway group that
/// never commits reads from the beginning (as read_twin_changelog; used on Kafka and in tests). Gives up
/// after `timeout` with what it read (those cars start empty, said in the log).
std::vector<AggregateSnapshot> read_aggregate_changelog(
    log::Log& log, const std::set<int32_t>& partitions,
    std::chrono::milliseconds timeout = std::chrono::seconds(60),
    const std::string& topic = core::topics::kAggregatesState);

/// The latest record of every key of the compacted `topic` on the given partitions, read to its end as
/// read_aggregate_changelog does (the partials an aggregate stage that gains those partitions merges).
std::vector<log::Record> read_compacted_latest(log::Log& log, const std::string& topic,
                                               const std::set<int32_t>& partitions,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// The snapshot file a clean stop of `up` wrote before the state table (`<data_dir>/aggregate.state`: a car
/// count, then per car its id and Engine::save_car bytes, each length-prefixed), and the file removed: the
/// state table takes it over once. Nothing when there is no file; what cannot be read is left out, with a
/// warning.
std::vector<AggregateSnapshot> take_aggregate_snapshot(const std::string& path);

}  // namespace fleettwin::stages
