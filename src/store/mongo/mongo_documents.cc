#include "store/mongo/mongo_documents.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fleettwin::store::mongo {
namespace {

constexpr const char* kFlags = "flags";

void write_signals(DocWriter& w, const core::Telemetry& t, const catalog::Catalog& c) {
  const std::size_t n = std::min(c.size(), t.values.size());
  for (size_t i = 0; i < n; ++i) {
    const auto& s = c[i];
    const double v = t.values[i];
    if (core::absent(v)) continue;
    // Int and bool signals (tyre pressures, firmware) as int64, as the catalog types them; doubles otherwise.
    if (s.type != core::SignalType::kDouble && std::isfinite(v) && v == std::floor(v) &&
        std::fabs(v) < 9e15) {
      w.int64(s.field, static_cast<int64_t>(v));
    } else {
      w.num(s.field, v);
    }
  }
  if (t.out_of_range.empty()) return;
  w.array(kFlags, [&](ArrayWriter& flags) {
    for (const uint16_t i : t.out_of_range) {
      if (i < c.size()) flags.str(c[i].field);
    }
  });
}

/// Calls f(key, iterator) for each member of the document at `path` (the whole document when empty): one
/// pass, however many signals the catalog has.
template <typename F>
void for_each_member(const bson_t* doc, const char* path, F&& f) {
  bson_iter_t it;
  bson_iter_t child;
  if (*path == '\0') {
    if (!bson_iter_init(&child, doc)) return;
  } else if (!bson_iter_init_find(&it, doc, path) || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
             !bson_iter_recurse(&it, &child)) {
    return;
  }
  while (bson_iter_next(&child)) f(std::string_view(bson_iter_key(&child)), child);
}

/// The signals and flags of the document at `path` into `t`, sized to the catalog.
void read_signals(const bson_t* doc, const char* path, const catalog::Catalog& c, core::Telemetry& t) {
  t.values.assign(c.size(), core::kAbsent);
  t.out_of_range.clear();
  for_each_member(doc, path, [&](std::string_view key, const bson_iter_t& it) {
    if (key == kFlags && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_iter_t flags;
      bson_iter_t copy = it;
      if (!bson_iter_recurse(&copy, &flags)) return;
      while (bson_iter_next(&flags)) {
        if (!BSON_ITER_HOLDS_UTF8(&flags)) continue;
        if (const auto i = c.find(bson_iter_utf8(&flags, nullptr))) {
          t.out_of_range.push_back(static_cast<uint16_t>(*i));
        }
      }
      return;
    }
    if (!BSON_ITER_HOLDS_NUMBER(&it)) return;  // null (an absent value written by an older build), location
    if (const auto i = c.find(key)) t.values[*i] = bson_iter_as_double(&it);
  });
  std::sort(t.out_of_range.begin(), t.out_of_range.end());
  t.out_of_range.erase(std::unique(t.out_of_range.begin(), t.out_of_range.end()), t.out_of_range.end());
}

std::vector<int64_t> read_metadata(const bson_t* doc, const catalog::Catalog& c) {
  std::vector<int64_t> out(c.size(), 0);
  for_each_member(doc, "metadata", [&](std::string_view key, const bson_iter_t& it) {
    const auto i = c.find(key);
    if (!i) return;
    if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
      out[*i] = bson_iter_date_time(&it);
    } else if (BSON_ITER_HOLDS_NUMBER(&it)) {
      out[*i] = bson_iter_as_int64(&it);
    }
  });
  return out;
}

void write_string_map(DocWriter& w, std::string_view key, const std::map<std::string, std::string>& m) {
  // Values are the JSON text the twin holds (e.g. "30", "\"eco\""), kept as strings so they read back
  // byte-for-byte.
  w.child(key, [&](DocWriter& child) {
    for (const auto& [k, v] : m) child.str(k, v);
  });
}

std::map<std::string, std::string> read_string_map(const bson_t* doc, const char* key) {
  std::map<std::string, std::string> out;
  bson_iter_t it;
  bson_iter_t child;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &child)) {
    while (bson_iter_next(&child)) {
      if (!BSON_ITER_HOLDS_UTF8(&child)) continue;
      uint32_t len = 0;
      const char* s = bson_iter_utf8(&child, &len);
      out.emplace(bson_iter_key(&child), std::string(s, len));
    }
  }
  return out;
}

void write_string_list(DocWriter& w, std::string_view key, const std::vector<std::string>& list) {
  w.array(key, [&](ArrayWriter& arr) {
    for (const auto& s : list) arr.str(s);
  });
}

double point_coordinate(const bson_t* d, const char* path) {
  bson_iter_t root;
  bson_iter_t it;
  if (bson_iter_init(&root, d) && bson_iter_find_descendant(&root, path, &it) &&
      BSON_ITER_HOLDS_NUMBER(&it)) {
    return bson_iter_as_double(&it);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// A command moves pending -> delivered -> acked | failed | expired; the rank lets the upsert filter refuse a
// replayed earlier state (as the SQLite CASE does).
int status_rank(const std::string& s) {
  if (s == "delivered") return 1;
  if (s == "acked" || s == "failed" || s == "expired") return 2;
  return 0;
}

/// Reads `key`, `value`, `key`, `value`, ... of `d`: each value by its type (get_str, get_int, get_num,
/// get_bool, get_str_list).
void get_field(const bson_t* d, const char* key, std::string& v) { v = get_str(d, key); }
void get_field(const bson_t* d, const char* key, int64_t& v) { v = get_int(d, key); }
void get_field(const bson_t* d, const char* key, double& v) { v = get_num(d, key); }
void get_field(const bson_t* d, const char* key, bool& v) { v = get_bool(d, key); }
void get_field(const bson_t* d, const char* key, std::vector<std::string>& v) { v = get_str_list(d, key); }
void get_fields(const bson_t* /*d*/) {}
template <typename T, typename... Rest>
void get_fields(const bson_t* d, const char* key, T& value, Rest&&... rest) {
  get_field(d, key, value);
  get_fields(d, std::forward<Rest>(rest)...);
}

}  // namespace

Bson twin_doc(const core::Twin& t, const catalog::Catalog& catalog) {
  Bson d;
  d.str("_id", t.id).int64("version", t.version);
  d.child("reported", [&](DocWriter& rep) {
    rep.int64("seq", t.reported.seq).date("ts", t.reported.ts).num("lat", t.reported.lat);
    rep.num("lon", t.reported.lon);
    write_signals(rep, t.reported, catalog);
  });
  d.boolean("has_reported", t.has_reported);
  write_string_map(d, "desired", t.desired);
  write_string_map(d, "reported_settings", t.reported_settings);
  write_string_list(d, "delta", t.delta());
  d.child("metadata", [&](DocWriter& meta) {
    // Every signal, 0 (the epoch) for never: a filter on metadata.<field> then sees the same value as the
    // in-memory twin.
    for (size_t i = 0; i < catalog.size(); ++i)
      meta.date(catalog[i].field, i < t.metadata.size() ? t.metadata[i] : 0);
  });
  d.child("health", [&](DocWriter& health) {
    health.num("score", t.health.score).num("threshold", t.health.threshold);
    health.str("status", core::to_string(t.health.status)).date("since", t.health.since);
    write_string_list(health, "top_signals", t.health.top_signals);
    health.str("model_version", t.health.model_version);
  });
  d.child("connection", [&](DocWriter& conn) {
    conn.boolean("online", t.online).date("first_seen", t.first_seen).date("last_seen", t.last_seen);
  });
  append_point(d.get(), "location", t.reported.lat, t.reported.lon);
  d.child("stats",
          [&](DocWriter& stats) { stats.int64("messages", t.messages).num("distance_km", t.distance_km); });
  if (!t.site.empty()) d.str("site", t.site);
  return d;
}

core::Twin read_twin(const bson_t* d, const catalog::Catalog& catalog) {
  core::Twin t;
  t.id = get_str(d, "_id");
  t.version = get_int(d, "version");
  t.has_reported = get_bool(d, "has_reported");
  // The reported state belongs to the twin's own car; the document does not repeat the id.
  if (t.has_reported) t.reported.car = t.id;
  t.reported.seq = get_int(d, "reported.seq");
  t.reported.ts = get_int(d, "reported.ts");
  t.reported.lat = get_num(d, "reported.lat");
  t.reported.lon = get_num(d, "reported.lon");
  read_signals(d, "reported", catalog, t.reported);
  t.desired = read_string_map(d, "desired");
  t.reported_settings = read_string_map(d, "reported_settings");
  t.metadata = read_metadata(d, catalog);
  t.health.score = get_num(d, "health.score");
  t.health.threshold = get_num(d, "health.threshold");
  t.health.status = core::health_status_from_string(get_str(d, "health.status"));
  t.health.since = get_int(d, "health.since");
  t.health.top_signals = get_str_list(d, "health.top_signals");
  t.health.model_version = get_str(d, "health.model_version");
  t.online = get_bool(d, "connection.online");
  t.first_seen = get_int(d, "connection.first_seen");
  t.last_seen = get_int(d, "connection.last_seen");
  t.messages = get_int(d, "stats.messages");
  t.distance_km = get_num(d, "stats.distance_km");
  t.site = get_str(d, "site");
  return t;
}

Bson twin_guard(const core::Twin& t) {
  Bson f = id_filter(t.id);
  f.array("$or", [&](ArrayWriter& any) {
    any.child([&](DocWriter& older) {
      older.child("reported.seq", [&](DocWriter& c) { c.int64("$lt", t.reported.seq); });
    });
    any.child([&](DocWriter& same_seq) {
      same_seq.int64("reported.seq", t.reported.seq);
      same_seq.child("version", [&](DocWriter& c) { c.int64("$lt", t.version); });
    });
  });
  return f;
}

Bson telemetry_doc(const TelemetryRow& r, const catalog::Catalog& catalog, int64_t stored_ms) {
  Bson d;
  d.str("_id", r.t.car + ":" + std::to_string(r.t.seq)).str("car", r.t.car).int64("seq", r.t.seq);
  d.date("ts", r.t.ts);
  append_point(d.get(), "location", r.t.lat, r.t.lon);
  write_signals(d, r.t, catalog);
  if (r.score) d.num("score", *r.score);
  d.date("stored", stored_ms);
  return d;
}

TelemetryRow read_telemetry(const bson_t* d, const catalog::Catalog& catalog) {
  TelemetryRow r;
  r.t.car = get_str(d, "car");
  r.t.seq = get_int(d, "seq");
  r.t.ts = get_int(d, "ts");
  r.t.lon = point_coordinate(d, "location.coordinates.0");
  r.t.lat = point_coordinate(d, "location.coordinates.1");
  read_signals(d, "", catalog, r.t);
  if (has(d, "score")) r.score = get_num(d, "score");
  return r;
}

Bson alert_update(const core::Alert& a) {
  Bson u = set_update([&](DocWriter& set) {
    set.str("car", a.car).str("kind", a.kind).boolean("raised", a.raised).date("ts", a.ts);
    set.num("score", a.score).num("threshold", a.threshold);
    write_string_list(set, "signals", a.signals);
    set.str("model_version", a.model_version);
    if (a.acknowledged) set.boolean("acknowledged", true);
  });
  if (!a.acknowledged)
    u.child("$setOnInsert", [](DocWriter& on_insert) { on_insert.boolean("acknowledged", false); });
  return u;
}

core::Alert read_alert(const bson_t* d) {
  core::Alert a;
  get_fields(d, "_id", a.id, "car", a.car, "kind", a.kind, "raised", a.raised, "ts", a.ts, "score", a.score,
             "threshold", a.threshold, "signals", a.signals, "model_version", a.model_version, "acknowledged",
             a.acknowledged);
  // Only once an operator labelled it (alerts stored before labels existed have none).
  if (has(d, "feedback")) {
    a.feedback = get_str(d, "feedback");
    a.feedback_note = get_str(d, "feedback_note");
    a.feedback_ts = get_int(d, "feedback_ts");
  }
  return a;
}

Bson alert_guard(const core::Alert& a) {
  Bson f = id_filter(a.id);
  f.array("$or", [&](ArrayWriter& any) {
    any.child([&](DocWriter& older) { older.child("ts", [&](DocWriter& c) { c.date("$lt", a.ts); }); });
    any.child([&](DocWriter& same_ts) {
      same_ts.date("ts", a.ts);
      if (a.raised) same_ts.boolean("raised", true);  // a raise re-applies only over a raise
    });
  });
  return f;
}

Bson command_doc(const core::Command& c) {
  Bson d;
  d.str("_id", c.id).str("car", c.car).str("name", c.name);
  d.str("params", c.params_json);                           // JSON object text, byte-exact
  d.date("created", c.created).date("expires", c.expires);  // expires: epoch (0) = never
  d.str("status", c.status).int64("status_rank", status_rank(c.status));
  return d;
}

core::Command read_command(const bson_t* d) {
  core::Command c;
  get_fields(d, "_id", c.id, "car", c.car, "name", c.name, "params", c.params_json, "created", c.created,
             "expires", c.expires, "status", c.status);
  return c;
}

Bson command_guard(const core::Command& c) {
  Bson f = id_filter(c.id);
  f.array("$or", [&](ArrayWriter& any) {
    any.child([&](DocWriter& same) { same.str("status", c.status); });
    any.child([&](DocWriter& earlier) {
      earlier.child("status_rank", [&](DocWriter& cmp) { cmp.int64("$lt", status_rank(c.status)); });
    });
  });
  return f;
}

}  // namespace fleettwin::store::mongo
