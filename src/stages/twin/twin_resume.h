#pragma once

#include <set>
#include <vector>

#include "catalog/catalog.h"
#include "log/log.h"
#include "stages/twin/twin_stage.h"
#include "store/twin_store.h"

namespace fleettwin::stages {

/// The compacted fleet.twins changelog read to its end, latest record per car (by reported.seq, then
/// version), each with the twin stage's bookkeeping and the partition it was read from: where a twin stage
/// resumes when it has no store of its own. `partitions`: only these partition numbers (all when null). A
/// throwaway group that never commits reads the topic from its beginning (on the embedded log such a group
/// would pin the topic's records: it is used on Kafka, and in tests). Gives up after `timeout`.
std::vector<TwinSnapshot> read_twin_changelog(log::Log& log, const catalog::Catalog& catalog,
                                              const std::set<int32_t>* partitions = nullptr,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// The store's twins, each with the twin stage's bookkeeping as the store knows it: the car's commands still
/// "pending" and its alerts still raised (the store keeps no `pending` member; reads the newest 100,000
/// commands and alerts). Where `up` resumes its twin stage: the embedded log does not outlive the process.
std::vector<TwinSnapshot> twins_from_store(store::TwinStore& store);

}  // namespace fleettwin::stages
