#pragma once

#include <string>
#include <vector>

#include "log/log.h"

namespace fleettwin::stages {

/// Central roles that read every edge site (`--sites`, docs/architecture.md "Edge sites and the central
/// cluster"): a site's copy of a topic is `<site>.<topic>` (MirrorMaker 2's naming, the site as source
/// alias). Only what the sites produce is read from them (telemetry, scores, alerts, command answers), never
/// their twins: central keeps its own twin per car, from every site's events by seq.

/// `inputs` plus a regex subscription (librdkafka: a topic that starts with '^') for each site-produced one.
std::vector<std::string> with_site_topics(const std::vector<std::string>& inputs);

/// Renames every record of `<site>.<topic>` in `batch` to `<topic>` and adds the header
/// core::topics::kHeaderSite = site. Records of central's own topics keep their names. A kHeaderSite header a
/// record brought is dropped from every record: only the topic says which site a record is of.
void strip_site_topics(std::vector<log::Record>& batch);

}  // namespace fleettwin::stages
