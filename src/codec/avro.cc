#include "codec/avro.h"

#include <algorithm>
#include <cmath>

#include "codec/json_writer.h"

namespace fleettwin::codec {

using core::SignalType;

void append_confluent_header(std::string& out, int32_t schema_id) {
  const auto id = static_cast<uint32_t>(schema_id);
  const char header[kConfluentHeaderSize] = {0, static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                                             static_cast<char>(id >> 8), static_cast<char>(id)};
  out.append(header, kConfluentHeaderSize);
}

bool read_confluent_header(std::string_view in, int32_t& schema_id, std::string_view& body) {
  if (in.size() < kConfluentHeaderSize || in[0] != 0) return false;
  const auto b = [&](std::size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(in[i])); };
  schema_id = static_cast<int32_t>(b(1) << 24 | b(2) << 16 | b(3) << 8 | b(4));
  body = in.substr(kConfluentHeaderSize);
  return true;
}

namespace {

std::string build_schema(const catalog::Catalog& c) {
  std::string out;
  JsonWriter w(out);
  const auto nullable = [&](std::string_view name, std::string_view type, std::string_view doc) {
    w.begin_object().key("name").string(name);
    w.key("type").begin_array().string("null").string(type).end_array();
    w.key("default").null();
    w.key("doc").string(doc).end_object();
  };
  w.begin_object();
  w.key("type").string("record");
  w.key("name").string("CarTelemetry");
  w.key("namespace").string("io.fleettwin");
  w.key("doc").string(
      "One validated telemetry message of one car (fleettwin DESIGN.md section 4), signals of catalog " +
      c.label() + ".");
  w.key("fields").begin_array();
  w.begin_object().key("name").string("car").key("type").string("string");
  w.key("doc").string("car id, [A-Za-z0-9_-]{1,64}").end_object();
  w.begin_object().key("name").string("ts");
  w.key("type")
      .begin_object()
      .key("type")
      .string("long")
      .key("logicalType")
      .string("timestamp-millis")
      .end_object();
  w.key("doc").string("device time, ms since the Unix epoch").end_object();
  w.begin_object().key("name").string("seq").key("type").string("long");
  w.key("doc").string("per-car sequence number, strictly increasing from 1").end_object();
  nullable("lat", "double", "latitude, degrees; null: no position");
  nullable("lon", "double", "longitude, degrees; null: no position");
  for (const auto& s : c.signals()) {
    w.begin_object().key("name").string(s.field);
    w.key("type").begin_array().string("null").string(avro_type(s.type)).end_array();
    w.key("default").null();
    // The signal's other names in identifier form: a reader resolves a writer's field by any of them.
    std::vector<std::string> aliases;
    for (const auto& name : [&] {
           std::vector<std::string> names{s.name};
           names.insert(names.end(), s.aliases.begin(), s.aliases.end());
           return names;
         }()) {
      const std::string f = catalog::field_name(name);
      if (f != s.field && std::find(aliases.begin(), aliases.end(), f) == aliases.end()) aliases.push_back(f);
    }
    if (!aliases.empty()) {
      w.key("aliases").begin_array();
      for (const auto& a : aliases) w.string(a);
      w.end_array();
    }
    w.key("doc").string(s.description + " (" + s.unit + "; catalog name " + s.name + ", part " +
                        std::string(catalog::to_string(s.part)) + ")");
    w.end_object();
  }
  w.begin_object().key("name").string("flags");
  w.key("type").begin_object().key("type").string("array").key("items").string("string").end_object();
  w.key("default").begin_array().end_array();
  w.key("doc")
      .string("fields whose reading lies outside the signal's plausible range (kept, flagged)")
      .end_object();
  w.end_array();
  w.end_object();
  return out;
}

int64_t to_int64(double v) {
  if (v <= -9.2233720368547758e18) return INT64_MIN;
  if (v >= 9.2233720368547758e18) return INT64_MAX;
  return static_cast<int64_t>(v);
}

inline constexpr std::size_t kDoubleBytes = 8;
// A union branch, then the larger of a double (8) and a long varint (10).
inline constexpr std::size_t kSignalBytes = 1 + kMaxVarintBytes;

}  // namespace

std::string_view avro_type(SignalType t) {
  switch (t) {
    case SignalType::kInt:
      return "long";
    case SignalType::kBool:
      return "boolean";
    case SignalType::kDouble:
      break;
  }
  return "double";
}

TelemetryAvro::TelemetryAvro(std::shared_ptr<const catalog::Catalog> catalog)
    : _catalog(std::move(catalog)), _schema(build_schema(*_catalog)) {
  for (const auto& s : _catalog->signals()) _types.push_back(s.type);
  // Header, car length, ts and seq varints, lat and lon with branches, the signals, the flags' end.
  _bound = kConfluentHeaderSize + 3 * kMaxVarintBytes + 2 * (1 + kDoubleBytes) +
           _types.size() * kSignalBytes + kMaxVarintBytes;
}

void TelemetryAvro::encode(const core::Telemetry& t, int32_t schema_id, std::string& out) const {
  std::size_t bound = _bound + t.car.size();
  for (const auto i : t.out_of_range) bound += kMaxVarintBytes + (*_catalog)[i].field.size();
  append_framed(out, schema_id, bound, [&](AvroWriter& w) {
    w.write_string(t.car);
    w.write_long(t.ts);
    w.write_long(t.seq);
    const bool position = t.has_position();
    w.write_long(position ? 1 : 0);
    if (position) w.write_double(t.lat);
    w.write_long(position ? 1 : 0);
    if (position) w.write_double(t.lon);
    const std::size_t n = std::min(t.values.size(), _types.size());
    for (std::size_t i = 0; i < _types.size(); ++i) {
      const double v = i < n ? t.values[i] : core::kAbsent;
      if (core::absent(v)) {
        w.write_long(0);
        continue;
      }
      w.write_long(1);
      switch (_types[i]) {
        case SignalType::kInt:
          w.write_long(to_int64(v));
          break;
        case SignalType::kBool:
          w.write_boolean(v != 0);
          break;
        case SignalType::kDouble:
          w.write_double(v);
          break;
      }
    }
    if (!t.out_of_range.empty()) {
      w.write_long(static_cast<int64_t>(t.out_of_range.size()));
      for (const auto i : t.out_of_range) w.write_string((*_catalog)[i].field);
    }
    w.write_long(0);  // end of the flags array
  });
}

bool TelemetryAvro::decode(std::string_view in, core::Telemetry& t, int32_t* schema_id,
                           std::string* error) const {
  int32_t id;
  std::string_view body;
  if (!read_confluent_header(in, id, body)) {
    if (error) {
      *error = in.size() < kConfluentHeaderSize ? "CarTelemetry: shorter than the 5-byte Confluent header"
                                                : "CarTelemetry: magic byte is not 0";
    }
    return false;
  }
  if (schema_id) *schema_id = id;
  AvroReader r(body);
  const char* problem = nullptr;
  const auto fail = [&](std::string_view field) {
    if (error) {
      *error = "CarTelemetry: field ";
      *error += field;
      *error += " at byte ";
      *error += std::to_string(kConfluentHeaderSize + r.position());
      *error += ": ";
      *error += problem != nullptr ? problem : r.error();
    }
    return false;
  };
  // A union of null and a value: false on a bad branch.
  const auto branch = [&](bool& present) {
    int64_t b;
    if (!r.read_long(b)) return false;
    if (b != 0 && b != 1) {
      problem = "union branch is neither 0 (null) nor 1";
      return false;
    }
    present = b == 1;
    return true;
  };
  std::string_view car;
  if (!r.read_string(car)) return fail("car");
  t.car.assign(car);
  if (!r.read_long(t.ts)) return fail("ts");
  if (!r.read_long(t.seq)) return fail("seq");
  bool present = false;
  t.lat = t.lon = core::kAbsent;
  if (!branch(present) || (present && !r.read_double(t.lat))) return fail("lat");
  if (!branch(present) || (present && !r.read_double(t.lon))) return fail("lon");
  t.values.assign(_types.size(), core::kAbsent);
  for (std::size_t i = 0; i < _types.size(); ++i) {
    if (!branch(present)) return fail((*_catalog)[i].field);
    if (!present) continue;
    switch (_types[i]) {
      case SignalType::kInt: {
        int64_t v;
        if (!r.read_long(v)) return fail((*_catalog)[i].field);
        t.values[i] = static_cast<double>(v);
        break;
      }
      case SignalType::kBool: {
        bool v;
        if (!r.read_boolean(v)) return fail((*_catalog)[i].field);
        t.values[i] = v ? 1 : 0;
        break;
      }
      case SignalType::kDouble:
        if (!r.read_double(t.values[i])) return fail((*_catalog)[i].field);
        break;
    }
  }
  t.out_of_range.clear();
  for (;;) {
    int64_t count;
    if (!r.read_long(count)) return fail("flags");
    if (count == 0) break;
    if (count < 0) {
      // A block with its byte size (Avro spec 1.11, "Arrays"). INT64_MIN has no positive counterpart.
      if (count == INT64_MIN) {
        problem = "a bad block count";
        return fail("flags");
      }
      int64_t bytes;  // skipped: the items are read one by one anyway
      if (!r.read_long(bytes)) return fail("flags");
      count = -count;
    }
    if (static_cast<uint64_t>(count) > _types.size() - t.out_of_range.size()) {
      problem = "more flags than signals";
      return fail("flags");
    }
    for (int64_t k = 0; k < count; ++k) {
      std::string_view field;
      if (!r.read_string(field)) return fail("flags");
      const auto i = _catalog->find(field);
      if (!i || (*_catalog)[*i].field != field) {
        problem = "a flag that names no signal of the catalog";
        return fail("flags");
      }
      t.out_of_range.push_back(static_cast<uint16_t>(*i));
    }
  }
  std::sort(t.out_of_range.begin(), t.out_of_range.end());
  if (std::adjacent_find(t.out_of_range.begin(), t.out_of_range.end()) != t.out_of_range.end()) {
    problem = "a signal flagged twice";
    return fail("flags");
  }
  if (!r.at_end()) {
    if (error) {
      *error = "CarTelemetry: " + std::to_string(r.remaining()) +
               " trailing bytes (written with a newer schema than this reader knows?)";
    }
    return false;
  }
  return true;
}

const TelemetryAvro& builtin_telemetry_avro() {
  static const TelemetryAvro kBuiltin;
  return kBuiltin;
}

const std::string& car_telemetry_schema() { return builtin_telemetry_avro().schema(); }

void encode_avro_telemetry(const core::Telemetry& t, int32_t schema_id, std::string& out) {
  builtin_telemetry_avro().encode(t, schema_id, out);
}

bool decode_avro_telemetry(std::string_view in, core::Telemetry& t, int32_t* schema_id, std::string* error) {
  return builtin_telemetry_avro().decode(in, t, schema_id, error);
}

}  // namespace fleettwin::codec
