#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregate/definition.h"
#include "aggregate/flat_index.h"
#include "aggregate/sketch.h"
#include "core/telemetry.h"

namespace fleettwin::aggregate {

class StateReader;

/// One window's result. Its key is (aggregate, group, window_start): a later revision of the same key
/// replaces an earlier one (revisions count from 1).
struct Result {
  std::string aggregate;
  std::string group;  ///< the car id, "fleet", or the attribute's value
  int64_t window_start = 0;
  int64_t window_end = 0;  ///< exclusive
  uint32_t revision = 1;
  /// True when the engine dropped the window's state with this result: no revision of it will follow.
  bool final = false;
  int64_t count = 0;  ///< events in the window
  /// One value per Definition::columns(), NaN when the window had no value of the signal (count: 0).
  std::vector<double> values;
};

/// One source's share of a group window (per fleet or per attribute value): the window's mergeable state
/// (counts, sums, extremes, last, sketches) as the events of one source partition made it. A group window's
/// result is the merge of the latest partial of every source (Engine::combine). `count`, the events the
/// source counted in the window, orders a source's partials: its events come in order, so a higher count is
/// a later partial, and the same count the same bytes (docs/architecture.md "Group windows").
struct Partial {
  std::string aggregate;
  std::string group;
  int32_t source = 0;      ///< the source partition number
  int64_t event_time = 0;  ///< the source's event time for the group (the greatest ts it counted for it)
  int64_t window_start = 0;
  int64_t count = 0;
  std::string window;  ///< the window's state bytes (start, count, signals, sketches)
};

struct EngineOptions {
  /// Windows kept per car and definition (or per group and definition): open ones and closed ones kept for
  /// revisions. Past it the oldest is dropped: emitted first (final) when it was still open or changed.
  /// With per-car windows final at close, a car reaches it only with a grace of 64 windows or more.
  std::size_t max_windows_per_key = 64;
  /// True: flush() merges the engine's own group partials (one process counts every source: `up`, tests).
  /// False: they wait for take_partials() (the aggregate role writes them to fleet.aggregates.partials and
  /// whichever copy holds the group's partition combines them).
  bool combine_own_partials = true;
};

struct EngineCounters {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t too_late = 0;          ///< events some definition refused
  uint64_t evicted_open = 0;      ///< windows dropped by the bound before they closed (emitted early, final)
  uint64_t retired_closed = 0;    ///< closed windows dropped by the bound before their lateness ran out
  uint64_t partials_refused = 0;  ///< partials combine() refused (no engine of these definitions made them)
  uint64_t partials_late = 0;     ///< partials of merged windows already dropped past their lateness
};

/// What became of one event.
enum class AddStatus : uint8_t {
  kAccepted,   ///< counted by every definition
  kDuplicate,  ///< the car's seq was not above the last one seen: a replay; counted nowhere
  kTooLate,    ///< at least one definition refused it (later than its allowed lateness); the stage DLQs it
  kBadTime,    ///< its event time is outside +-kMaxEventTime (no window arithmetic on it); counted nowhere
};

/// Event times the engine takes, in ms either side of the epoch (about 146 million years): far beyond any
/// device clock, and far enough from the int64 limits that window arithmetic cannot overflow.
inline constexpr int64_t kMaxEventTime = int64_t{1} << 62;
/// The longest group value (an attribute's value) a partial or saved state may carry.
inline constexpr std::size_t kMaxGroupBytes = 256;

/// The aggregation engine: every definition over a stream of telemetry, by event time, with revisions for
/// late events. Single-threaded: one instance per stage copy, used from one thread (no locks inside).
///
/// Event time is kept per key: each car's own (for per-car definitions) and each group's (the maximum event
/// time of any of its cars, for per-fleet and per-attribute ones). A window closes, and its result is emitted
/// with revision 1, when its key's event time reaches end + grace (group windows: see below). An event for a
/// closed window within the allowed lateness (its key's event time < end + allowed lateness) changes it and
/// the window is revised: one result with revision + 1 at the next flush(), however many late events it took.
/// Windows are dropped when their key's event time passes end + allowed lateness; events for them are
/// kTooLate. A car that was offline does not advance its own event time, so its buffered events, uploaded
/// later in seq order, land in its still-open windows and close them in order: complete, with no revision;
/// only group windows are revised. So a per-car definition's lateness defaults to its grace (parse_yaml()): a
/// car's own windows are final when they close (only a clock going backwards could change one), and a car
/// holds only the windows that can still change, one or two per definition, however long the lateness of the
/// group windows.
///
/// Duplicates: seq is strictly increasing per car and a car's events arrive in seq order (the log keeps a
/// car's messages in order), so an event whose seq is not above the car's last is a replay and is ignored
/// (one guard per car for every definition). The same input in the same order gives the same results.
///
/// Group windows (per fleet, per attribute) are counted per source partition (add()'s `source`): each
/// source's share is a Partial, made at flush() for every group window changed since, and merged by the
/// combiner (combine(), flush()) that keeps the latest partial of each source. A source's share is saved with
/// its partition (save_source()), so a copy that takes the partition over goes on exactly; the merge's
/// revision is the count of events merged, so a later merge always has a higher one and the same partials
/// the same one. A source drops its share once its own event time for the group passes end + allowed
/// lateness (later events are kTooLate); the combiner closes the merge by the group's event time, the
/// greatest of its sources', and drops it past the lateness.
class Engine {
 public:
  explicit Engine(std::vector<Definition> definitions, EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::vector<Definition>& definitions() const { return _defs; }
  /// The twin attributes the definitions group by, in order: add() takes one value of each.
  const std::vector<std::string>& attributes() const { return _attributes; }

  /// Counts one event. `attribute_values[i]` is the car's value of attributes()[i] (std::invalid_argument
  /// when fewer are given). Results of windows that closed are kept until flush().
  /// `source` is the partition number the event came from: group windows are kept per source.
  AddStatus add(const core::Telemetry& t, std::span<const std::string_view> attribute_values = {},
                int32_t source = 0);
  /// The results since the last flush: windows closed, and one revision of each closed window changed since.
  /// Group windows: the partial of every group window changed since the last flush is made (and merged,
  /// with combine_own_partials); a merged window's result comes when its group's event time (the greatest
  /// of its sources') reaches end + grace, and again whenever a later partial changes it, with revision =
  /// the events merged (the sum of the sources' counts: higher for a later merge, the same after a restart).
  std::vector<Result> flush();
  /// The partials made by the flushes since the last call (combine_own_partials false).
  std::vector<Partial> take_partials() { return std::exchange(_partials, {}); }
  /// Takes one source's partial of a group window (kept when its count is above the source's last one);
  /// its merged result comes at the next flush(). False, and the reason in `error` (may be null), for a
  /// partial these definitions cannot have made: partials come back from the log, outside input.
  bool combine(const Partial& p, std::string* error);
  /// Drops the merged group windows of the groups `drop(aggregate, group)` selects (their partition of the
  /// partials topic moved to another copy).
  void forget_combined(const std::function<bool(std::string_view, std::string_view)>& drop);
  /// Makes a partial of every group window `source` holds at the next flush (after a restore: the
  /// combiner's copy of them died with the process).
  void touch_source(int32_t source);
  /// The group windows one source counted, as bytes restore_source() takes back (empty when none).
  std::string save_source(int32_t source) const;
  /// Replaces the group windows of `source` with what save_source() wrote; false and the reason in `error`
  /// (may be null) on bytes it cannot have written, the state left as it was.
  bool restore_source(int32_t source, std::string_view bytes, std::string* error);
  /// Drops the group windows of `source` (its partition moved to another copy).
  void forget_source(int32_t source);
  /// Sources with group windows.
  std::vector<int32_t> sources() const;

  /// The state of one car, its seq guard and its per-car windows, as bytes restore_car() takes back (empty
  /// for a car never seen). Call it right after flush(): the bytes hold no unflushed revision. They start
  /// with fingerprint(), so an engine with other definitions refuses them. Group windows (fleet, attribute)
  /// are not part of a car's state.
  std::string save_car(std::string_view car) const;
  /// Replaces the state of `car` with what save_car() wrote. False, the car's state left as it was and the
  /// reason in `error` (may be null), on bytes save_car() of an engine with these definitions and options
  /// cannot have written: saved state comes back from the log, which is outside input.
  bool restore_car(std::string_view car, std::string_view bytes, std::string* error);
  /// Drops the state of `car` (its partition moved to another copy of the stage).
  void forget_car(std::string_view car);
  /// The car's own event time: the greatest ts any per-car definition took from it (restored state
  /// included); INT64_MIN for a car without state or when no definition is per car. Where a replay of the
  /// car's stored history resumes.
  int64_t car_event_time(std::string_view car) const;
  /// Cars with state.
  std::size_t cars() const { return _cars.size(); }
  /// Their ids, in no particular order.
  std::vector<std::string> car_ids() const;
  /// A hash of the definitions and options: saved state is only restored into an engine with the same.
  uint64_t fingerprint() const { return _fingerprint; }

  /// Bytes of one car's state (its seq guard and per-car windows); 0 for a car never seen.
  std::size_t car_memory_bytes(std::string_view car) const;
  /// Bytes of all state: cars, groups and results not yet flushed.
  std::size_t memory_bytes() const;
  const EngineCounters& counters() const { return _counters; }

 private:
  // One signal's accumulator in one window.
  struct SignalState {
    int64_t n = 0;
    double min = 0;
    double max = 0;
    double sum = 0;
    double last = 0;
    int64_t last_ts = 0;
    int64_t last_seq = 0;
  };
  // The signals and the sketches sit beside each other in the window (not behind a pointer per sketch): an
  // event's work is a few dependent loads of cold state, and each pointer less is one cache miss less.
  struct Window {
    int64_t start = 0;
    int64_t count = 0;
    uint32_t revision = 0;  ///< results emitted so far; 0 while open
    bool dirty = false;     ///< closed and changed since its last result
    std::vector<SignalState> signals;
    std::vector<Sketch> sketches;  ///< one per signal with a percentile, in the order of the signals
  };
  // One key's (car's or group's) windows for one definition, oldest first, and its event time.
  struct KeyState {
    int64_t max_ts = INT64_MIN;
    int64_t next_due = INT64_MAX;         ///< the earliest event time at which settle() has work
    int64_t dropped_through = INT64_MIN;  ///< the newest start of a window dropped by the bound
    std::vector<Window> windows;
  };
  // A car's state, in its index entry: the first kInlineKeys definitions' windows are reached without a
  // further pointer (the shipped definitions are two).
  static constexpr std::size_t kInlineKeys = 2;
  struct CarState {
    int64_t last_seq = 0;
    KeyState inline_keys[kInlineKeys];
    std::vector<KeyState> more_keys;  ///< the per-car definitions past kInlineKeys
    KeyState& key(std::size_t i) { return i < kInlineKeys ? inline_keys[i] : more_keys[i - kInlineKeys]; }
    const KeyState& key(std::size_t i) const {
      return i < kInlineKeys ? inline_keys[i] : more_keys[i - kInlineKeys];
    }
  };
  struct Dirty {
    std::size_t def;
    std::string key;
    int64_t start;
    int32_t source = 0;
  };
  // The combiner's view of one group window: the latest partial of each source.
  struct CombinedWindow {
    std::map<int32_t, Window> parts;
    bool touched = false;  ///< a partial came since its last result
    bool emitted = false;  ///< a result was emitted (since this process took the group)
  };
  struct CombinedKey {
    int64_t max_ts = INT64_MIN;
    std::map<int64_t, CombinedWindow> windows;
    bool listed = false;  ///< in _touched_keys
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using Map = std::unordered_map<std::string, V, Hash, std::equal_to<>>;

  bool count(std::size_t def, KeyState& ks, std::string_view key, const core::Telemetry& t, int32_t source);
  Window* window_for(std::size_t def, KeyState& ks, std::string_view key, int64_t start, int32_t source);
  void settle(std::size_t def, KeyState& ks, std::string_view key, int32_t source);
  void emit(std::size_t def, std::string_view key, Window& w, bool final);
  void emit_partial(std::size_t def, std::string_view key, const KeyState& ks, Window& w, int32_t source);
  std::vector<Map<KeyState>>& source_groups(int32_t source);
  void save_window(std::size_t def, const Window& w, std::string& out) const;
  void merge_into(std::size_t def, Window& into, const Window& from) const;
  void emit_combined(std::size_t def, const std::string& group, int64_t start, const CombinedWindow& cw,
                     bool final);
  void flush_combined();
  uint64_t compute_group_fingerprint() const;
  static double value_of(Function f, const SignalState& s, const Sketch* sketch);
  CarState new_car() const;
  static std::size_t key_bytes(const KeyState& ks);
  static std::size_t window_bytes(const Window& w);
  std::size_t car_bytes(const std::string& id, const CarState& car) const;
  uint64_t compute_fingerprint() const;
  bool restore_key(std::size_t def, KeyState& ks, StateReader& r) const;
  bool restore_window(std::size_t def, Window& w, StateReader& r) const;

  std::vector<Definition> _defs;
  EngineOptions _options;
  std::vector<std::string> _attributes;
  std::vector<std::size_t> _slot;       ///< per definition: index in CarState::keys or in _groups
  std::vector<std::size_t> _attribute;  ///< per definition with kAttribute: index in _attributes
  /// Per definition, per signal: its index in Window::sketches, or kNoSketch.
  std::vector<std::vector<std::size_t>> _sketch_of;
  static constexpr std::size_t kNoSketch = SIZE_MAX;
  std::size_t _car_definitions = 0;
  FlatIndex<CarState> _cars;
  /// Per source partition, per group definition (its slot): the group windows that source counted.
  std::map<int32_t, std::vector<Map<KeyState>>> _sources;
  std::vector<std::size_t> _group_defs;  ///< the definitions with a slot in _sources, by slot
  /// Per group definition (its slot), per group value: the merge of the sources' partials.
  std::vector<Map<CombinedKey>> _combined;
  std::vector<std::pair<std::size_t, std::string>> _touched_keys;  ///< (slot, group) combined since the flush
  std::vector<Dirty> _dirty;
  std::vector<Result> _pending;
  std::vector<Partial> _partials;
  EngineCounters _counters;
  uint64_t _fingerprint = 0;
  uint64_t _group_fingerprint = 0;
};

}  // namespace fleettwin::aggregate
