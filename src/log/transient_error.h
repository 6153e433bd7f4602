#pragma once

#include "log/log.h"

namespace fleettwin::log {

/// A call that failed for now and may succeed when made again: the broker did not answer in time or is being
/// restarted. Nothing it was given is lost (a commit that did not happen leaves the previous offsets, and a
/// later one covers them). Thrown by the Kafka consumer's commit; a caller that can wait (the StageRunner)
/// retries with a backoff instead of stopping. Any thread.
class TransientLogError : public LogError {
 public:
  using LogError::LogError;
};

}  // namespace fleettwin::log
