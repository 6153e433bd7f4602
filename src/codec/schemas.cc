#include "codec/schemas.h"

#include <cmath>

#include "codec/avro.h"
#include "codec/json_writer.h"

namespace fleettwin::codec {

namespace {

constexpr std::size_t kDoubleBytes = 8;

/// An Avro array as one block of `items` (none when empty), each written by `write_item`, then the 0 that
/// ends every array.
template <typename Item, typename WriteItem>
void write_array(AvroWriter& w, const std::vector<Item>& items, WriteItem&& write_item) {
  if (!items.empty()) {
    w.write_long(static_cast<int64_t>(items.size()));
    for (const auto& item : items) write_item(item);
  }
  w.write_long(0);
}

// ---- schema texts --------------------------------------------------------------------------------------

/// Field writer for the schema builders: {"name", "type", "default"?, "doc"}.
class FieldWriter {
 public:
  explicit FieldWriter(JsonWriter& w) : _w(w) {}

  void simple(std::string_view name, std::string_view type, std::string_view doc) {
    _w.begin_object().key("name").string(name).key("type").string(type).key("doc").string(doc).end_object();
  }
  /// `default_json` is the default's JSON text.
  void with_default(std::string_view name, std::string_view type, std::string_view default_json,
                    std::string_view doc) {
    _w.begin_object().key("name").string(name).key("type").string(type);
    _w.key("default").raw(default_json).key("doc").string(doc).end_object();
  }
  void timestamp(std::string_view name, std::string_view doc) {
    _w.begin_object().key("name").string(name).key("type").begin_object();
    _w.key("type").string("long").key("logicalType").string("timestamp-millis").end_object();
    _w.key("doc").string(doc).end_object();
  }

 private:
  JsonWriter& _w;
};

void begin_record(JsonWriter& w, std::string_view name, std::string_view doc) {
  w.begin_object().key("type").string("record").key("name").string(name);
  w.key("namespace").string("io.fleettwin").key("doc").string(doc).key("fields").begin_array();
}

std::string build_anomaly_score_schema() {
  std::string out;
  JsonWriter w(out);
  FieldWriter f(w);
  begin_record(w, "AnomalyScore",
               "The anomaly score of one telemetry event (fleettwin DESIGN.md section 4).");
  f.simple("car", "string", "car id");
  f.timestamp("ts", "device time of the scored event, ms since the Unix epoch");
  f.simple("seq", "long", "sequence number of the scored event");
  f.with_default("score", "double", "0", "reconstruction error of the event");
  f.with_default("threshold", "double", "0", "score above which the event counts as anomalous");
  w.begin_object().key("name").string("top_signals").key("type").begin_object();
  w.key("type").string("array").key("items");
  begin_record(w, "SignalDeviation", "One signal's share of the score.");
  f.simple("signal", "string", "signal name from the catalog");
  f.simple("deviation", "double", "that signal's reconstruction error");
  w.end_array().end_object();  // SignalDeviation
  w.end_object();              // array
  w.key("default").begin_array().end_array();
  w.key("doc").string("largest contributors first").end_object();
  f.with_default("model_version", "string", "\"\"", "version of the model that scored the event");
  f.with_default("in_alert", "boolean", "false",
                 "true when the car is in anomaly alert after this event (its status is then anomaly)");
  w.end_array().end_object();
  return out;
}

std::string build_alert_schema() {
  std::string out;
  JsonWriter w(out);
  FieldWriter f(w);
  begin_record(w, "Alert", "An anomaly alert raised or cleared for one car (fleettwin DESIGN.md section 4).");
  f.simple("id", "string", "deterministic id {car}:{kind}:{raised ts}");
  f.simple("car", "string", "car id");
  f.simple("kind", "string", "e.g. anomaly");
  f.simple("raised", "boolean", "true when raised, false when cleared");
  f.timestamp("ts", "device time of the event that raised or cleared it, ms since the Unix epoch");
  f.with_default("score", "double", "0", "score of that event");
  f.with_default("threshold", "double", "0", "threshold in force");
  w.begin_object().key("name").string("signals").key("type").begin_object();
  w.key("type").string("array").key("items").string("string").end_object();
  w.key("default").begin_array().end_array();
  w.key("doc").string("top contributing signals").end_object();
  f.with_default("model_version", "string", "\"\"", "version of the model that scored the event");
  w.end_array().end_object();
  return out;
}

std::string build_aggregate_result_schema() {
  std::string out;
  JsonWriter w(out);
  FieldWriter f(w);
  begin_record(
      w, "AggregateResult",
      "One window result of an aggregate (fleettwin DESIGN.md section 4); a later revision of the same "
      "(aggregate, group, window_start) replaces an earlier one.");
  f.simple("aggregate", "string", "name of the aggregate definition");
  f.simple("group", "string", "car id, fleet, or the value of the attribute the aggregate groups by");
  f.timestamp("window_start", "first ms of the window, since the Unix epoch");
  f.timestamp("window_end", "first ms after the window (exclusive)");
  f.simple("revision", "int", "1 when the window closed, one more per revision by late events");
  f.simple("final", "boolean", "true when no revision of this window will follow");
  f.simple("count", "long", "events in the window");
  w.begin_object().key("name").string("values").key("type").begin_object();
  w.key("type").string("array").key("items");
  begin_record(w, "AggregateValue", "One column of the result.");
  f.simple("column", "string", "<signal>_<function>, e.g. speed_mean");
  w.begin_object().key("name").string("value").key("type").begin_array().string("null").string("double");
  w.end_array().key("doc").string("null when the window had no value of the signal").end_object();
  w.end_array().end_object();  // AggregateValue
  w.end_object();              // array
  w.key("doc").string("the definition's columns, in its order").end_object();
  w.end_array().end_object();
  return out;
}

// ---- shared decoding steps -----------------------------------------------------------------------------

/// Decoding state shared by the two decoders: the reader and the error text with the field and offset.
class Decoder {
 public:
  Decoder(std::string_view record, std::string* error) : _record(record), _error(error), _r({}) {}

  bool header(std::string_view in, int32_t* schema_id) {
    int32_t id;
    std::string_view body;
    if (!read_confluent_header(in, id, body)) {
      return fail_text(in.size() < kConfluentHeaderSize ? "shorter than the 5-byte Confluent header"
                                                        : "magic byte is not 0");
    }
    if (schema_id) *schema_id = id;
    _r = AvroReader(body);
    return true;
  }

  AvroReader& reader() { return _r; }

  bool string(std::string& s, std::string_view field) {
    std::string_view v;
    if (!_r.read_string(v)) return fail(field);
    s.assign(v);
    return true;
  }

  /// Reads the next block count of an array (spec "Arrays": a negative count is followed by the block's
  /// size in bytes). `min_item_bytes` bounds the count by the input left, so garbage cannot make the
  /// caller reserve memory for items that are not there.
  bool block(int64_t& count, std::size_t min_item_bytes, std::string_view field) {
    if (!_r.read_long(count)) return fail(field);
    if (count < 0) {
      if (count == INT64_MIN) return fail_text(std::string(field) + ": bad block count");
      count = -count;
      int64_t bytes;
      if (!_r.read_long(bytes)) return fail(field);
    }
    if (static_cast<uint64_t>(count) > _r.remaining() / min_item_bytes) {
      return fail_text(std::string(field) + ": block count larger than the remaining input");
    }
    return true;
  }
  /// An array into `items` (cleared first): its blocks until the 0 that ends it, each item read by
  /// `read_item(Item&)`, which returns false after reporting what failed.
  template <typename Item, typename ReadItem>
  bool array(std::vector<Item>& items, std::size_t min_item_bytes, std::string_view field,
             ReadItem&& read_item) {
    items.clear();
    while (true) {
      int64_t count;
      if (!block(count, min_item_bytes, field)) return false;
      if (count == 0) return true;
      for (int64_t i = 0; i < count; ++i) {
        if (!read_item(items.emplace_back())) return false;
      }
    }
  }

  bool fail(std::string_view field) {
    return fail_text("field " + std::string(field) + " at byte " +
                     std::to_string(kConfluentHeaderSize + _r.position()) + ": " + _r.error());
  }

  /// A value that decoded but is not one a writer of this schema writes.
  bool refuse(std::string_view what) { return fail_text(what); }

  bool end() {
    if (_r.at_end()) return true;
    return fail_text(std::to_string(_r.remaining()) +
                     " trailing bytes (written with a newer schema than this reader knows?)");
  }

 private:
  bool fail_text(std::string_view what) {
    if (_error) {
      *_error = _record;
      *_error += ": ";
      *_error += what;
    }
    return false;
  }

  std::string_view _record;
  std::string* _error;
  AvroReader _r;
};

}  // namespace

const std::string& anomaly_score_schema() {
  static const std::string kSchema = build_anomaly_score_schema();
  return kSchema;
}

const std::string& alert_schema() {
  static const std::string kSchema = build_alert_schema();
  return kSchema;
}

void encode_avro_anomaly_score(const AnomalyScore& s, int32_t schema_id, std::string& out) {
  std::size_t bound = kConfluentHeaderSize + 3 * kMaxVarintBytes + s.car.size() + 2 * kDoubleBytes +
                      2 * kMaxVarintBytes + kMaxVarintBytes + s.model_version.size() + 1;
  for (const auto& d : s.top_signals) bound += kMaxVarintBytes + d.signal.size() + kDoubleBytes;
  append_framed(out, schema_id, bound, [&s](AvroWriter& w) {
    w.write_string(s.car);
    w.write_long(s.ts);
    w.write_long(s.seq);
    w.write_double(s.score);
    w.write_double(s.threshold);
    write_array(w, s.top_signals, [&w](const SignalDeviation& d) {
      w.write_string(d.signal);
      w.write_double(d.deviation);
    });
    w.write_string(s.model_version);
    w.write_boolean(s.in_alert);
  });
}

bool decode_avro_anomaly_score(std::string_view in, AnomalyScore& s, int32_t* schema_id, std::string* error) {
  Decoder d("AnomalyScore", error);
  if (!d.header(in, schema_id)) return false;
  AvroReader& r = d.reader();
  if (!d.string(s.car, "car")) return false;
  if (!r.read_long(s.ts)) return d.fail("ts");
  if (!r.read_long(s.seq)) return d.fail("seq");
  if (!r.read_double(s.score)) return d.fail("score");
  if (!r.read_double(s.threshold)) return d.fail("threshold");
  const bool signals_read =
      d.array(s.top_signals, 1 + kDoubleBytes, "top_signals", [&](SignalDeviation& dev) {
        if (!d.string(dev.signal, "top_signals.signal")) return false;
        return r.read_double(dev.deviation) || d.fail("top_signals.deviation");
      });
  if (!signals_read) return false;
  if (!d.string(s.model_version, "model_version")) return false;
  // in_alert came later: a record that ends here was written before it (its default, false).
  s.in_alert = false;
  if (!r.at_end() && !r.read_boolean(s.in_alert)) return d.fail("in_alert");
  return d.end();
}

void encode_avro_alert(const core::Alert& a, int32_t schema_id, std::string& out) {
  std::size_t bound = kConfluentHeaderSize + 4 * kMaxVarintBytes + a.id.size() + a.car.size() +
                      a.kind.size() + 1 + kMaxVarintBytes + 2 * kDoubleBytes + 2 * kMaxVarintBytes +
                      kMaxVarintBytes + a.model_version.size();
  for (const auto& sig : a.signals) bound += kMaxVarintBytes + sig.size();
  append_framed(out, schema_id, bound, [&a](AvroWriter& w) {
    w.write_string(a.id);
    w.write_string(a.car);
    w.write_string(a.kind);
    w.write_boolean(a.raised);
    w.write_long(a.ts);
    w.write_double(a.score);
    w.write_double(a.threshold);
    write_array(w, a.signals, [&w](const std::string& sig) { w.write_string(sig); });
    w.write_string(a.model_version);
  });
}

bool decode_avro_alert(std::string_view in, core::Alert& a, int32_t* schema_id, std::string* error) {
  Decoder d("Alert", error);
  if (!d.header(in, schema_id)) return false;
  AvroReader& r = d.reader();
  if (!d.string(a.id, "id") || !d.string(a.car, "car") || !d.string(a.kind, "kind")) return false;
  if (!r.read_boolean(a.raised)) return d.fail("raised");
  if (!r.read_long(a.ts)) return d.fail("ts");
  if (!r.read_double(a.score)) return d.fail("score");
  if (!r.read_double(a.threshold)) return d.fail("threshold");
  if (!d.array(a.signals, 1, "signals", [&](std::string& signal) { return d.string(signal, "signals"); }))
    return false;
  if (!d.string(a.model_version, "model_version")) return false;
  a.acknowledged = false;
  return d.end();
}

const std::string& aggregate_result_schema() {
  static const std::string kSchema = build_aggregate_result_schema();
  return kSchema;
}

void encode_avro_aggregate_result(const AggregateResult& r, int32_t schema_id, std::string& out) {
  std::size_t bound = kConfluentHeaderSize + 2 * kMaxVarintBytes + r.aggregate.size() + r.group.size() +
                      4 * kMaxVarintBytes + 1 + 2 * kMaxVarintBytes;
  for (const auto& v : r.values) bound += 2 * kMaxVarintBytes + v.column.size() + kDoubleBytes;
  append_framed(out, schema_id, bound, [&r](AvroWriter& w) {
    w.write_string(r.aggregate);
    w.write_string(r.group);
    w.write_long(r.window_start);
    w.write_long(r.window_end);
    w.write_int(r.revision);
    w.write_boolean(r.final);
    w.write_long(r.count);
    write_array(w, r.values, [&w](const AggregateValue& v) {
      w.write_string(v.column);
      if (std::isnan(v.value)) {
        w.write_long(0);  // union branch 0: null
      } else {
        w.write_long(1);
        w.write_double(v.value);
      }
    });
  });
}

namespace {

/// A string field of an aggregate result: present, not empty, at most `max` bytes.
bool bounded_string(Decoder& d, std::string& s, std::size_t max, std::string_view field) {
  if (!d.string(s, field)) return false;
  if (s.empty()) return d.refuse(std::string(field) + " is empty");
  if (s.size() > max)
    return d.refuse(std::string(field) + " is longer than " + std::to_string(max) + " bytes");
  return true;
}

bool read_aggregate_value(Decoder& d, AggregateValue& v) {
  if (!bounded_string(d, v.column, kMaxAggregateColumnBytes, "values.column")) return false;
  AvroReader& r = d.reader();
  int64_t branch;
  if (!r.read_long(branch)) return d.fail("values.value");
  if (branch == 0) {
    v.value = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (branch != 1) return d.refuse("values.value: union branch " + std::to_string(branch) + " is not 0 or 1");
  return r.read_double(v.value) || d.fail("values.value");
}

}  // namespace

bool decode_avro_aggregate_result(std::string_view in, AggregateResult& r, int32_t* schema_id,
                                  std::string* error) {
  Decoder d("AggregateResult", error);
  if (!d.header(in, schema_id)) return false;
  AvroReader& rd = d.reader();
  if (!bounded_string(d, r.aggregate, kMaxAggregateNameBytes, "aggregate") ||
      !bounded_string(d, r.group, kMaxAggregateGroupBytes, "group"))
    return false;
  if (!rd.read_long(r.window_start)) return d.fail("window_start");
  if (!rd.read_long(r.window_end)) return d.fail("window_end");
  if (r.window_end <= r.window_start) return d.refuse("window_end is not after window_start");
  if (!rd.read_int(r.revision)) return d.fail("revision");
  if (r.revision < 1) return d.refuse("revision is below 1");
  if (!rd.read_boolean(r.final)) return d.fail("final");
  if (!rd.read_long(r.count)) return d.fail("count");
  if (r.count < 0) return d.refuse("count is negative");
  // An item is at least a column length, one byte of column and a union branch.
  if (!d.array(r.values, 3, "values", [&](AggregateValue& v) {
        if (r.values.size() > kMaxAggregateColumns)
          return d.refuse("more than " + std::to_string(kMaxAggregateColumns) + " values");
        return read_aggregate_value(d, v);
      }))
    return false;
  return d.end();
}

std::string aggregate_result_key(std::string_view aggregate, std::string_view group, int64_t window_start) {
  std::string key;
  key.reserve(aggregate.size() + group.size() + 22);
  key.append(aggregate).append(1, '|').append(group).append(1, '|').append(std::to_string(window_start));
  return key;
}

}  // namespace fleettwin::codec
