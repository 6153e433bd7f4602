// Twin, Alert and Command documents. Not on the per-message path (twins are written per batch and read by
// the store and the API), so clarity wins over speed here: the whole document is validated strictly with
// simdjson's DOM parser first, then read with its on-demand API, which is the one that can hand back the
// exact text of embedded JSON values (settings, command parameters).

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "codec/json.h"
#include "codec/json_writer.h"

namespace fleettwin::codec {

namespace {

namespace od = simdjson::ondemand;

/// Parsers and a padded copy buffer reused across calls. The readers are free functions called from any
/// thread, so each thread has its own (thread_local).
struct ThreadParsers {
  simdjson::dom::parser dom;
  od::parser ondemand;
  std::string buffer;
};

ThreadParsers& thread_parsers() {
  thread_local ThreadParsers p;
  return p;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// Copies `json` into the thread's padded buffer and returns a view of the copy.
std::string_view padded_copy(std::string_view json) {
  std::string& b = thread_parsers().buffer;
  b.clear();
  b.reserve(json.size() + kJsonPadding);
  b.append(json);
  return b;
}

bool dom_valid(std::string_view padded) {
  return thread_parsers().dom.parse(padded.data(), padded.size(), false).error() == simdjson::SUCCESS;
}

// ---- writing -------------------------------------------------------------------------------------------

// Embedded JSON text is spliced in only when it is one valid value, so a bad setting can never corrupt
// (or inject fields into) the document around it; anything else is kept, as a string.
void write_json_text(JsonWriter& w, std::string_view text) {
  const std::string_view t = trim(text);
  if (!t.empty() && dom_valid(padded_copy(t))) {
    w.raw(t);
  } else {
    w.string(text);
  }
}

void write_json_text_map(JsonWriter& w, const std::map<std::string, std::string>& m) {
  w.begin_object();
  for (const auto& [k, v] : m) {
    w.key(k);
    write_json_text(w, v);
  }
  w.end_object();
}

void write_signal(JsonWriter& w, const catalog::SignalSpec& s, double v) {
  if (s.type != core::SignalType::kDouble && v > -9.2e18 && v < 9.2e18 && v == std::trunc(v)) {
    w.integer(static_cast<int64_t>(v));
  } else {
    w.number(v);
  }
}

void write_strings(JsonWriter& w, const std::vector<std::string>& v) {
  w.begin_array();
  for (const auto& s : v) w.string(s);
  w.end_array();
}

// ---- reading -------------------------------------------------------------------------------------------

/// Reads one document with typed accessors that report errors as `<what>: field "<path>": <problem>`.
/// Lives for one *_from_json call on the caller's thread.
class Reader {
 public:
  Reader(std::string_view what, std::string* error) : _what(what), _error(error) {}

  // Parses `json` and calls on_member(key, value) for each top-level member.
  template <class F>
  bool read(std::string_view json, F&& on_member) {
    const std::string_view padded = padded_copy(json);
    if (const auto code = thread_parsers().dom.parse(padded.data(), padded.size(), false).error()) {
      return fail("", std::string("not valid JSON: ") + simdjson::error_message(code));
    }
    od::document doc;
    od::object object;
    if (thread_parsers().ondemand.iterate(padded, thread_parsers().buffer.capacity()).get(doc) ||
        doc.get_object().get(object)) {
      return fail("", "not a JSON object");
    }
    return members(object, "", on_member);
  }

  // Calls on_member(key, value) for each member of the object `v` (the field at `path`).
  template <class F>
  bool object(od::value v, std::string_view path, F&& on_member) {
    od::object o;
    if (v.get_object().get(o)) return fail(path, "expected an object");
    return members(o, path, on_member);
  }

  bool integer(od::value v, std::string_view path, int64_t& out) {
    if (!v.get_int64().get(out)) return true;
    // Stores that keep every number as a double (or a BSON double) give back 3.0 for 3: accept whole values.
    double d;
    if (!v.get_double().get(d) && d == std::trunc(d) && d > -9.2e18 && d < 9.2e18) {
      out = static_cast<int64_t>(d);
      return true;
    }
    return fail(path, "expected an integer");
  }

  bool number(od::value v, std::string_view path, double& out) {
    bool is_null = false;
    if (!v.is_null().get(is_null) && is_null) {  // the writer's spelling of NaN and infinities
      out = std::numeric_limits<double>::quiet_NaN();
      return true;
    }
    if (v.get_double().get(out)) return fail(path, "expected a number");
    return true;
  }

  bool string(od::value v, std::string_view path, std::string& out) {
    std::string_view s;
    if (v.get_string().get(s)) return fail(path, "expected a string");
    out.assign(s);
    return true;
  }

  bool boolean(od::value v, std::string_view path, bool& out) {
    if (v.get_bool().get(out)) return fail(path, "expected true or false");
    return true;
  }

  bool strings(od::value v, std::string_view path, std::vector<std::string>& out) {
    od::array a;
    if (v.get_array().get(a)) return fail(path, "expected an array of strings");
    out.clear();
    for (auto element : a) {
      std::string_view s;
      if (element.get_string().get(s)) return fail(path, "expected an array of strings");
      out.emplace_back(s);
    }
    return true;
  }

  // The exact JSON text of the value (the document was validated as a whole before).
  bool json_text(od::value v, std::string_view path, std::string& out) {
    od::json_type type;
    if (v.type().get(type)) return fail(path, "unreadable value");
    std::string_view text;
    bool bad = false;
    if (type == od::json_type::object) {
      od::object o;
      bad = v.get_object().get(o) || o.raw_json().get(text);
    } else if (type == od::json_type::array) {
      od::array a;
      bad = v.get_array().get(a) || a.raw_json().get(text);
    } else {
      text = trim(v.raw_json_token());
    }
    if (bad) return fail(path, "unreadable value");
    out.assign(text);
    return true;
  }

  bool json_text_map(od::value v, std::string_view path, std::map<std::string, std::string>& out) {
    out.clear();
    return object(v, path, [&](std::string_view key, od::value value) {
      return json_text(value, path, out[std::string(key)]);
    });
  }

  bool fail(std::string_view path, std::string_view problem) {
    if (_error) {
      *_error = _what;
      *_error += ": ";
      if (!path.empty()) {
        *_error += "field ";
        append_json_string(*_error, path);
        *_error += ": ";
      }
      *_error += problem;
    }
    return false;
  }

 private:
  template <class F>
  bool members(od::object o, std::string_view path, F&& on_member) {
    for (auto member : o) {
      std::string_view key;
      od::value value;
      if (member.unescaped_key().get(key) || member.value().get(value))
        return fail(path, "unreadable member");
      if (!on_member(key, value)) return false;
    }
    return true;
  }

  std::string_view _what;
  std::string* _error;
};

}  // namespace

bool valid_json_value(std::string_view json) { return dom_valid(padded_copy(json)); }

// ---- Twin ----------------------------------------------------------------------------------------------

namespace {

/// The members of a twin document; the caller opens and closes the object.
void write_twin_members(JsonWriter& w, const core::Twin& t, const catalog::Catalog& catalog) {
  w.key("_id").string(t.id);
  w.key("version").integer(t.version);

  w.key("reported").begin_object();
  // The reported car is the twin's own id once the car has reported; it is written only when it is not.
  if (t.reported.car != (t.has_reported ? std::string_view(t.id) : std::string_view())) {
    w.key("car").string(t.reported.car);
  }
  if (t.has_reported) {
    // Present signals only, by catalog name; a twin sized for a smaller catalog renders what it has.
    const std::size_t n = std::min(catalog.size(), t.reported.values.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (core::absent(t.reported.values[i])) continue;
      w.key(catalog[i].name);
      write_signal(w, catalog[i], t.reported.values[i]);
    }
    if (!t.reported.out_of_range.empty()) {
      w.key("flags").begin_array();
      for (const uint16_t i : t.reported.out_of_range) {
        if (i < catalog.size()) w.string(catalog[i].name);
      }
      w.end_array();
    }
    w.key("ts").integer(t.reported.ts);
    w.key("seq").integer(t.reported.seq);
  }
  w.key("settings");
  write_json_text_map(w, t.reported_settings);
  w.end_object();

  w.key("desired");
  write_json_text_map(w, t.desired);
  w.key("delta");
  write_strings(w, t.delta());

  w.key("metadata").begin_object();
  for (std::size_t i = 0; i < std::min(catalog.size(), t.metadata.size()); ++i) {
    if (t.metadata[i] != 0) w.key(catalog[i].name).integer(t.metadata[i]);
  }
  w.end_object();

  w.key("health").begin_object();
  w.key("score").number(t.health.score);
  w.key("threshold").number(t.health.threshold);
  w.key("status").string(core::to_string(t.health.status));
  w.key("since").integer(t.health.since);
  w.key("top_signals");
  write_strings(w, t.health.top_signals);
  w.key("model_version").string(t.health.model_version);
  w.end_object();

  w.key("connection").begin_object();
  w.key("online").boolean(t.online);
  w.key("first_seen").integer(t.first_seen);
  w.key("last_seen").integer(t.last_seen);
  w.end_object();

  // GeoJSON (longitude first) so MongoDB's 2dsphere index can use it; null until the car has reported a
  // position (a car may report signals without one: lat/lon absent).
  w.key("location");
  if (t.has_reported && t.reported.has_position()) {
    w.begin_object().key("type").string("Point").key("coordinates").begin_array();
    w.number(t.reported.lon).number(t.reported.lat).end_array().end_object();
  } else {
    w.null();
  }

  w.key("stats").begin_object();
  w.key("messages").integer(t.messages);
  w.key("distance_km").number(t.distance_km);
  w.end_object();
  if (!t.site.empty()) w.key("site").string(t.site);
}

}  // namespace

std::string twin_to_json(const core::Twin& t, const catalog::Catalog& catalog) {
  std::string out;
  out.reserve(1536);
  JsonWriter w(out);
  w.begin_object();
  write_twin_members(w, t, catalog);
  w.end_object();
  return out;
}

std::string twin_record_to_json(const core::Twin& t, const core::TwinPending& pending,
                                const catalog::Catalog& catalog) {
  std::string out;
  out.reserve(1536);
  JsonWriter w(out);
  w.begin_object();
  write_twin_members(w, t, catalog);
  if (!pending.empty()) {
    w.key("pending").begin_object();
    w.key("commands").begin_array();
    for (const auto& c : pending.commands) {
      w.begin_object().key("id").string(c.id).key("settings");
      write_json_text_map(w, c.settings);
      w.key("expires").integer(c.expires).end_object();
    }
    w.end_array();
    w.key("open_alerts");
    write_strings(w, pending.open_alerts);
    w.end_object();
  }
  w.end_object();
  return out;
}

bool twin_pending_from_json(std::string_view json, core::TwinPending& pending, std::string* error) {
  core::TwinPending p;
  Reader r("twin", error);
  const auto read_command = [&](od::value v) {
    core::TwinPending::Command c;
    const bool ok = r.object(v, "pending.commands", [&](std::string_view key, od::value m) {
      if (key == "id") return r.string(m, "pending.commands.id", c.id);
      if (key == "settings") return r.json_text_map(m, "pending.commands.settings", c.settings);
      if (key == "expires") return r.integer(m, "pending.commands.expires", c.expires);
      return true;
    });
    if (ok) p.commands.push_back(std::move(c));
    return ok;
  };
  const auto read_pending = [&](std::string_view key, od::value v) {
    if (key == "open_alerts") return r.strings(v, "pending.open_alerts", p.open_alerts);
    if (key != "commands") return true;
    od::array a;
    if (v.get_array().get(a)) return r.fail("pending.commands", "expected an array");
    for (auto element : a) {
      od::value c;
      if (element.get(c)) return r.fail("pending.commands", "unreadable element");
      if (!read_command(c)) return false;
    }
    return true;
  };
  const bool ok = r.read(json, [&](std::string_view key, od::value v) {
    return key != "pending" || r.object(v, "pending", read_pending);
  });
  if (!ok) return false;
  pending = std::move(p);
  return true;
}

bool twin_from_json(std::string_view json, core::Twin& twin, std::string* error,
                    const catalog::Catalog& catalog) {
  core::Twin t;
  t.reported.values.assign(catalog.size(), core::kAbsent);
  t.metadata.assign(catalog.size(), 0);
  bool has_id = false;
  bool has_car = false;
  Reader r("twin", error);

  // Flags name signals; names this catalog lacks are dropped, as their values are.
  const auto read_flags = [&](od::value v) {
    std::vector<std::string> names;
    if (!r.strings(v, "reported.flags", names)) return false;
    for (const auto& name : names) {
      if (const auto i = catalog.find(name)) t.reported.out_of_range.push_back(static_cast<uint16_t>(*i));
    }
    std::sort(t.reported.out_of_range.begin(), t.reported.out_of_range.end());
    const auto last = std::unique(t.reported.out_of_range.begin(), t.reported.out_of_range.end());
    t.reported.out_of_range.erase(last, t.reported.out_of_range.end());
    return true;
  };
  const auto read_reported = [&](std::string_view key, od::value v) {
    if (key == "car") {
      has_car = true;
      return r.string(v, "reported.car", t.reported.car);
    }
    if (key == "ts") {
      t.has_reported = true;
      return r.integer(v, "reported.ts", t.reported.ts);
    }
    if (key == "seq") return r.integer(v, "reported.seq", t.reported.seq);
    if (key == "settings") return r.json_text_map(v, "reported.settings", t.reported_settings);
    if (key == "flags") return read_flags(v);
    if (const auto i = catalog.find(key)) return r.number(v, key, t.reported.values[*i]);
    return true;
  };
  const auto read_metadata = [&](std::string_view key, od::value v) {
    if (const auto i = catalog.find(key)) return r.integer(v, key, t.metadata[*i]);
    return true;
  };
  const auto read_health = [&](std::string_view key, od::value v) {
    if (key == "score") return r.number(v, "health.score", t.health.score);
    if (key == "threshold") return r.number(v, "health.threshold", t.health.threshold);
    if (key == "since") return r.integer(v, "health.since", t.health.since);
    if (key == "top_signals") return r.strings(v, "health.top_signals", t.health.top_signals);
    if (key == "model_version") return r.string(v, "health.model_version", t.health.model_version);
    if (key == "status") {
      std::string s;
      if (!r.string(v, "health.status", s)) return false;
      t.health.status = core::health_status_from_string(s);
    }
    return true;
  };
  const auto read_connection = [&](std::string_view key, od::value v) {
    if (key == "online") return r.boolean(v, "connection.online", t.online);
    if (key == "first_seen") return r.integer(v, "connection.first_seen", t.first_seen);
    if (key == "last_seen") return r.integer(v, "connection.last_seen", t.last_seen);
    return true;
  };
  const auto read_location = [&](od::value v) {
    bool is_null = false;
    if (!v.is_null().get(is_null) && is_null) return true;
    return r.object(v, "location", [&](std::string_view key, od::value c) {
      if (key != "coordinates") return true;
      od::array a;
      double lonlat[2];
      std::size_t n = 0;
      if (c.get_array().get(a)) return r.fail("location.coordinates", "expected [lon, lat]");
      for (auto e : a) {
        if (n == 2 || e.get_double().get(lonlat[n]))
          return r.fail("location.coordinates", "expected [lon, lat]");
        ++n;
      }
      if (n != 2) return r.fail("location.coordinates", "expected [lon, lat]");
      t.reported.lon = lonlat[0];
      t.reported.lat = lonlat[1];
      return true;
    });
  };
  const auto read_stats = [&](std::string_view key, od::value v) {
    if (key == "messages") return r.integer(v, "stats.messages", t.messages);
    if (key == "distance_km") return r.number(v, "stats.distance_km", t.distance_km);
    return true;
  };

  const bool ok = r.read(json, [&](std::string_view key, od::value v) {
    if (key == "_id") {
      has_id = true;
      return r.string(v, "_id", t.id);
    }
    if (key == "version") return r.integer(v, "version", t.version);
    if (key == "reported") return r.object(v, "reported", read_reported);
    if (key == "desired") return r.json_text_map(v, "desired", t.desired);
    if (key == "metadata") return r.object(v, "metadata", read_metadata);
    if (key == "health") return r.object(v, "health", read_health);
    if (key == "connection") return r.object(v, "connection", read_connection);
    if (key == "location") return read_location(v);
    if (key == "stats") return r.object(v, "stats", read_stats);
    if (key == "site") return r.string(v, "site", t.site);
    return true;  // "delta" is derived; other fields belong to newer writers
  });
  if (!ok) return false;
  if (!has_id) return r.fail("_id", "missing");
  if (!has_car && t.has_reported) t.reported.car = t.id;
  twin = std::move(t);
  return true;
}

// ---- Alert ---------------------------------------------------------------------------------------------

std::string alert_to_json(const core::Alert& a) {
  std::string out;
  out.reserve(256);
  JsonWriter w(out);
  w.begin_object();
  w.key("_id").string(a.id);
  w.key("car").string(a.car);
  w.key("kind").string(a.kind);
  w.key("raised").boolean(a.raised);
  w.key("ts").integer(a.ts);
  w.key("score").number(a.score);
  w.key("threshold").number(a.threshold);
  w.key("signals");
  write_strings(w, a.signals);
  w.key("model_version").string(a.model_version);
  w.key("acknowledged").boolean(a.acknowledged);
  w.key("feedback").string(a.feedback);  // "" until an operator labels it
  w.key("feedback_note").string(a.feedback_note);
  w.key("feedback_ts").integer(a.feedback_ts);
  w.end_object();
  return out;
}

bool alert_from_json(std::string_view json, core::Alert& alert, std::string* error) {
  core::Alert a;
  bool has_id = false;
  Reader r("alert", error);
  const bool ok = r.read(json, [&](std::string_view key, od::value v) {
    if (key == "_id") {
      has_id = true;
      return r.string(v, "_id", a.id);
    }
    if (key == "car") return r.string(v, "car", a.car);
    if (key == "kind") return r.string(v, "kind", a.kind);
    if (key == "raised") return r.boolean(v, "raised", a.raised);
    if (key == "ts") return r.integer(v, "ts", a.ts);
    if (key == "score") return r.number(v, "score", a.score);
    if (key == "threshold") return r.number(v, "threshold", a.threshold);
    if (key == "signals") return r.strings(v, "signals", a.signals);
    if (key == "model_version") return r.string(v, "model_version", a.model_version);
    if (key == "acknowledged") return r.boolean(v, "acknowledged", a.acknowledged);
    if (key == "feedback") return r.string(v, "feedback", a.feedback);
    if (key == "feedback_note") return r.string(v, "feedback_note", a.feedback_note);
    if (key == "feedback_ts") return r.integer(v, "feedback_ts", a.feedback_ts);
    return true;
  });
  if (!ok) return false;
  if (!has_id) return r.fail("_id", "missing");
  alert = std::move(a);
  return true;
}

// ---- Command -------------------------------------------------------------------------------------------

std::string command_to_json(const core::Command& c) {
  std::string out;
  out.reserve(256);
  JsonWriter w(out);
  w.begin_object();
  w.key("_id").string(c.id);
  w.key("car").string(c.car);
  w.key("name").string(c.name);
  w.key("params");
  if (c.params_json.empty()) {
    w.null();
  } else {
    write_json_text(w, c.params_json);
  }
  w.key("created").integer(c.created);
  w.key("expires").integer(c.expires);
  w.key("status").string(c.status);
  w.end_object();
  return out;
}

bool command_from_json(std::string_view json, core::Command& command, std::string* error) {
  core::Command c;
  bool has_id = false;
  Reader r("command", error);
  const bool ok = r.read(json, [&](std::string_view key, od::value v) {
    if (key == "_id") {
      has_id = true;
      return r.string(v, "_id", c.id);
    }
    if (key == "car") return r.string(v, "car", c.car);
    if (key == "name") return r.string(v, "name", c.name);
    if (key == "params") {
      bool is_null = false;
      if (!v.is_null().get(is_null) && is_null) return true;
      return r.json_text(v, "params", c.params_json);
    }
    if (key == "created") return r.integer(v, "created", c.created);
    if (key == "expires") return r.integer(v, "expires", c.expires);
    if (key == "status") return r.string(v, "status", c.status);
    return true;
  });
  if (!ok) return false;
  if (!has_id) return r.fail("_id", "missing");
  command = std::move(c);
  return true;
}

// ---- Command acks and settings --------------------------------------------------------------------------

std::string command_ack_to_json(const core::CommandAck& a) {
  std::string out;
  out.reserve(192);
  JsonWriter w(out);
  w.begin_object();
  w.key("id").string(a.id);
  w.key("car").string(a.car);
  w.key("status").string(a.status);
  w.key("ts").integer(a.ts);
  w.key("reported");
  write_json_text_map(w, a.reported);
  if (!a.reason.empty()) w.key("reason").string(a.reason);
  w.end_object();
  return out;
}

bool command_ack_from_json(std::string_view json, core::CommandAck& ack, std::string* error) {
  core::CommandAck a;
  Reader r("command ack", error);
  const bool ok = r.read(json, [&](std::string_view key, od::value v) {
    if (key == "id") return r.string(v, "id", a.id);
    if (key == "car") return r.string(v, "car", a.car);
    if (key == "status") return r.string(v, "status", a.status);
    if (key == "ts") return r.integer(v, "ts", a.ts);
    if (key == "reported") return r.json_text_map(v, "reported", a.reported);
    if (key == "reason") return r.string(v, "reason", a.reason);
    return true;
  });
  if (!ok) return false;
  if (a.id.empty()) return r.fail("id", "missing");
  if (a.status != "acked" && a.status != "failed" && a.status != "expired")
    return r.fail("status", "must be acked, failed or expired");
  ack = std::move(a);
  return true;
}

namespace {

// One number out of a small JSON object such as {"kmh": 90}; false when absent or not a number.
bool number_field(std::string_view json, std::string_view field, double& out) {
  const std::string_view padded = padded_copy(trim(json));
  simdjson::dom::element doc;
  if (thread_parsers().dom.parse(padded.data(), padded.size(), false).get(doc)) return false;
  simdjson::dom::element v;
  if (doc.at_key(field).get(v)) return false;
  return !v.get_double().get(out);  // integers convert too
}

bool fail_with(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}

std::string number_text(double v) {
  std::string out;
  JsonWriter w(out);
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    w.integer(static_cast<int64_t>(v));
  } else {
    w.number(v);
  }
  return out;
}

}  // namespace

bool command_settings(const core::Command& c, std::map<std::string, std::string>& settings,
                      std::string* error) {
  settings.clear();
  const std::string params = c.params_json.empty() ? "{}" : c.params_json;
  double v = 0;
  if (c.name == "set_speed_limit") {
    if (!number_field(params, "kmh", v) || !(v >= 0 && v <= 250))
      return fail_with(error, "set_speed_limit needs {\"kmh\": number 0..250} (0 removes the limit)");
    settings["speed_limit_kmh"] = number_text(v);
  } else if (c.name == "update_firmware") {
    if (!number_field(params, "version", v) || !(v >= 0 && v <= 100000) || v != std::trunc(v))
      return fail_with(error, "update_firmware needs {\"version\": integer 0..100000}");
    settings["firmware_version"] = number_text(v);
  } else if (c.name == "schedule_service") {
    settings["service"] = "true";
  } else {
    return fail_with(error, "unknown command '" + c.name + "'");
  }
  return true;
}

bool command_for_setting(std::string_view setting, std::string_view value, core::Command& command,
                         std::string* error) {
  const std::string wrapped = "{\"v\":" + std::string(trim(value)) + "}";
  double v = 0;
  if (setting == "speed_limit_kmh") {
    if (!number_field(wrapped, "v", v) || !(v >= 0 && v <= 250))
      return fail_with(error, "setting speed_limit_kmh: expected a number 0..250 (0 removes the limit)");
    command.name = "set_speed_limit";
    command.params_json = "{\"kmh\":" + number_text(v) + "}";
  } else if (setting == "firmware_version") {
    if (!number_field(wrapped, "v", v) || !(v >= 0 && v <= 100000) || v != std::trunc(v))
      return fail_with(error, "setting firmware_version: expected an integer 0..100000");
    command.name = "update_firmware";
    command.params_json = "{\"version\":" + number_text(v) + "}";
  } else if (setting == "service") {
    if (trim(value) != "true")
      return fail_with(error, "setting service: expected true (schedules a service visit)");
    command.name = "schedule_service";
    command.params_json = "{}";
  } else {
    return fail_with(error, "unknown setting '" + std::string(setting) +
                                "' (settings: speed_limit_kmh, firmware_version, service)");
  }
  return true;
}

}  // namespace fleettwin::codec
