#pragma once

#include <string>

#include "app/pipeline.h"

namespace fleettwin::cli {

/// The closing summary of a pipeline run (`up`, `bench embedded|kafka`) on stderr.
void print_summary(const app::RunSummary& s);
/// Writes `json` and a newline to `path`; a ConfigError when it cannot.
void write_json(const std::string& path, const std::string& json);

}  // namespace fleettwin::cli
