#pragma once

// An optional capability of a log::Consumer: taking back the records its reader is done with, to reuse their
// memory. A separate interface rather than a member of Consumer, so that a consumer without it (Kafka: each
// poll's records come from librdkafka's own buffers) does nothing, and a caller asks for it by dynamic_cast.

#include <vector>

#include "log/log.h"

namespace fleettwin::log {

/// Implemented by a consumer that copies every record it returns (the embedded log copies each one out of its
/// partition for every group): given back the records poll() returned once they are processed, it
/// overwrites them on a later poll, so a copy lands in buffers already allocated instead of costing an
/// allocation and a free per string. Called on the consumer's one thread, like poll().
class Recycler {
 public:
  /// Takes `records` (left empty); a consumer keeps a bounded number of them.
  virtual void recycle(std::vector<Record>&& records) = 0;

 protected:
  ~Recycler() = default;
};

}  // namespace fleettwin::log
