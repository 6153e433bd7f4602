#include "codec/avro.h"

#include <algorithm>
#include <cmath>

#include "codec/json_writer.h"

namespace fleettwin::codec {

using core::kSignalCount;
using core::kSignals;
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

std::string build_car_telemetry_schema() {
  std::string out;
  JsonWriter w(out);
  const auto field = [&](std::string_view name, std::string_view type, bool with_default,
                         std::string_view doc) {
    w.begin_object().key("name").string(name).key("type").string(type);
    if (with_default) w.key("default").integer(0);
    w.key("doc").string(doc).end_object();
  };
  w.begin_object();
  w.key("type").string("record");
  w.key("name").string("CarTelemetry");
  w.key("namespace").string("io.fleettwin");
  w.key("doc").string("One validated telemetry message of one car (fleettwin DESIGN.md section 4).");
  w.key("fields").begin_array();
  field("car", "string", false, "car id, [A-Za-z0-9_-]{1,64}");
  w.begin_object().key("name").string("ts");
  w.key("type")
      .begin_object()
      .key("type")
      .string("long")
      .key("logicalType")
      .string("timestamp-millis")
      .end_object();
  w.key("doc").string("device time, ms since the Unix epoch").end_object();
  field("seq", "long", false, "per-car sequence number, strictly increasing from 1");
  field("lat", "double", true, "latitude, degrees");
  field("lon", "double", true, "longitude, degrees");
  for (const auto& s : kSignals) {
    field(s.name, s.type == SignalType::kInt ? "int" : "double", true,
          std::string(s.description) + " (" + std::string(s.unit) + ")");
  }
  w.end_array();
  w.end_object();
  return out;
}

int32_t to_int32(double v) {
  if (!(v == v)) return 0;
  if (v <= INT32_MIN) return INT32_MIN;
  if (v >= INT32_MAX) return INT32_MAX;
  return static_cast<int32_t>(v);
}

// Upper bound of an encoded CarTelemetry without its car id: header, car length, ts and seq varints, lat and
// lon, and per signal the larger of a double (8) and an int varint (5).
inline constexpr std::size_t kDoubleBytes = 8;
inline constexpr std::size_t kFixedBytes = kConfluentHeaderSize + 3 * kMaxVarintBytes + 2 * kDoubleBytes +
                                           kSignalCount * std::max(kDoubleBytes, kMaxVarintBytes);

}  // namespace

const std::string& car_telemetry_schema() {
  static const std::string kSchema = build_car_telemetry_schema();
  return kSchema;
}

void encode_avro_telemetry(const core::Telemetry& t, int32_t schema_id, std::string& out) {
  append_framed(out, schema_id, kFixedBytes + t.car.size(), [&t](AvroWriter& w) {
    w.write_string(t.car);
    w.write_long(t.ts);
    w.write_long(t.seq);
    w.write_double(t.lat);
    w.write_double(t.lon);
    for (std::size_t i = 0; i < kSignalCount; ++i) {
      if (kSignals[i].type == SignalType::kInt) {
        w.write_int(to_int32(t.values[i]));
      } else {
        w.write_double(t.values[i]);
      }
    }
  });
}

bool decode_avro_telemetry(std::string_view in, core::Telemetry& t, int32_t* schema_id, std::string* error) {
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
  const auto fail = [&](std::string_view field) {
    if (error) {
      *error = "CarTelemetry: field ";
      *error += field;
      *error += " at byte ";
      *error += std::to_string(kConfluentHeaderSize + r.position());
      *error += ": ";
      *error += r.error();
    }
    return false;
  };
  std::string_view car;
  if (!r.read_string(car)) return fail("car");
  t.car.assign(car);
  if (!r.read_long(t.ts)) return fail("ts");
  if (!r.read_long(t.seq)) return fail("seq");
  if (!r.read_double(t.lat)) return fail("lat");
  if (!r.read_double(t.lon)) return fail("lon");
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    if (kSignals[i].type == SignalType::kInt) {
      int32_t v;
      if (!r.read_int(v)) return fail(kSignals[i].name);
      t.values[i] = v;
    } else if (!r.read_double(t.values[i])) {
      return fail(kSignals[i].name);
    }
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

}  // namespace fleettwin::codec
