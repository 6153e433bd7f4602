#pragma once

#include <algorithm>
#include <cstdint>

namespace fleettwin::stages {

/// The twin stage's "now" for offline detection and command expiry: a car is offline when it was silent while
/// the rest of the pipeline was demonstrably delivering, never because the pipeline itself stood still.
///
/// Liveness time moves in two ways only:
/// - event time: a message's device ts moves it forward (so a car silent while others talk goes offline in a
///   `--fast` run, during a catch-up and in real time alike);
/// - quiet time: beyond the newest device ts it advances by wall (steady) time, but only over intervals in
///   which the stage saw its own input caught up *and* its upstream caught up at both ends of the interval
///   (a whole fleet that really disconnects still goes offline). An interval longer than `max_gap_ms`
///   between two looks means the stage itself was stalled (blocked on a full log, a slow broker): it counts
///   as at most `max_gap_ms`.
/// Quiet time never moves it past the clock (simulated time in `--fast`, else wall time), and `now` is capped
/// by the clock too, so a car whose device clock runs ahead cannot make the others look silent.
/// Plain value; used on the twin stage's thread.
class Liveness {
 public:
  explicit Liveness(int64_t max_gap_ms = 5000) : _max_gap_ms(max_gap_ms) {}

  /// A message with device time `ts` was applied (or a restored twin was last seen at `ts`).
  void event(int64_t ts) { _time = std::max(_time, ts); }

  /// The stage looked at its input at steady time `steady_ms`, with the clock at `clock_ms`. `flowing`:
  /// its input and its upstream were both caught up.
  void observe(int64_t steady_ms, int64_t clock_ms, bool flowing) {
    if (_looked && _flowing && flowing && _time > 0) {
      const int64_t quiet = std::clamp<int64_t>(steady_ms - _last_ms, 0, _max_gap_ms);
      _time = std::max(_time, std::min(_time + quiet, clock_ms));
    }
    _looked = true;
    _last_ms = steady_ms;
    _flowing = flowing;
  }

  /// Liveness time, at most `clock_ms`; the clock itself before any event.
  int64_t now(int64_t clock_ms) const { return _time == 0 ? clock_ms : std::min(_time, clock_ms); }

 private:
  int64_t _max_gap_ms;
  int64_t _time = 0;
  int64_t _last_ms = 0;
  bool _looked = false;
  bool _flowing = false;
};

}  // namespace fleettwin::stages
