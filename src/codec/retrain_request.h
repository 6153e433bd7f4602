#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fleettwin::codec {

/// A request to train a candidate model now: the value of a fleet.models record with key "retrain.request"
/// ({"reason":"drift"|"api"|"schedule","detail":...,"ts":ms}). Written by the API (POST
/// /api/v1/models/train) and the drift watch, read by the trainer stage. Plain value.
struct RetrainRequest {
  std::string reason;  ///< drift | api | schedule
  std::string detail;  ///< free text (or the JSON text of a non-string detail), at most kMaxRetrainDetail
  int64_t ts = 0;      ///< ms since the epoch, when it was asked
};

/// A record on the log is outside input: documents above this size are refused, and a detail is cut to
/// kMaxRetrainDetail bytes (it is only shown).
inline constexpr std::size_t kMaxRetrainRequestBytes = 8192;
inline constexpr std::size_t kMaxRetrainDetail = 1024;

/// Reads a request; false with `error` saying why (not JSON, too large, unknown reason, bad ts).
bool parse_retrain_request(std::string_view json, RetrainRequest& out, std::string* error);
std::string retrain_request_to_json(const RetrainRequest& r);

}  // namespace fleettwin::codec
