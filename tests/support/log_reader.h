#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "log/log.h"

namespace fleettwin::testing {

/// Every record of `topic` as a fresh consumer group sees it, read until three polls in a row come back
/// empty. For tests of stages on the embedded log, after the stage has drained.
inline std::vector<log::Record> read_all(log::Log& log, const std::string& topic) {
  auto c = log.consumer("check." + topic);
  c->subscribe({topic});
  std::vector<log::Record> out;
  for (int empty = 0; empty < 3;) {
    auto batch = c->poll(10000, std::chrono::milliseconds(50));
    empty = batch.empty() ? empty + 1 : 0;
    out.insert(out.end(), batch.begin(), batch.end());
  }
  return out;
}

}  // namespace fleettwin::testing
