// Our CarTelemetry encoding against the Apache Avro C library, from the same schema text: both must write
// the same bytes and read each other's. Built only where libavro-dev is installed.

#include <avro.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "codec/avro.h"
#include "support/telemetry_samples.h"

using namespace fleettwin;
using namespace fleettwin::codec;
using namespace fleettwin::codec::testing;

namespace {

/// The value of a union's value branch, as Telemetry holds it.
double value_of(avro_value_t& branch, core::SignalType type) {
  if (type == core::SignalType::kInt) {
    int64_t v = 0;
    avro_value_get_long(&branch, &v);
    return static_cast<double>(v);
  }
  double d = 0;
  avro_value_get_double(&branch, &d);
  return d;
}

/// Owns an avro-c schema, its generic value class and one record value. Test thread only.
class AvroC {
 public:
  explicit AvroC(const std::string& schema_json) {
    if (avro_schema_from_json_length(schema_json.data(), schema_json.size(), &_schema) != 0) {
      _error = avro_strerror();
      _schema = nullptr;
      return;
    }
    _iface = avro_generic_class_from_schema(_schema);
    avro_generic_value_new(_iface, &_value);
  }
  ~AvroC() {
    if (_iface) {
      avro_value_decref(&_value);
      avro_value_iface_decref(_iface);
    }
    if (_schema) avro_schema_decref(_schema);
  }
  bool ok() const { return _schema != nullptr; }
  const std::string& error() const { return _error; }
  avro_schema_t schema() const { return _schema; }

  avro_value_t field(const char* name) {
    avro_value_t f;
    EXPECT_EQ(avro_value_get_by_name(&_value, name, &f, nullptr), 0) << name;
    return f;
  }

  /// Avro binary body of `t` written by avro-c.
  std::string write(const core::Telemetry& t) {
    avro_value_reset(&_value);
    avro_value_t f = field("car");
    avro_value_set_string(&f, t.car.c_str());
    f = field("ts");
    avro_value_set_long(&f, t.ts);
    f = field("seq");
    avro_value_set_long(&f, t.seq);
    // Nullable fields: branch 0 null, branch 1 the value.
    const auto nullable = [&](const char* name, bool present, auto set) {
      avro_value_t u = field(name), branch;
      avro_value_set_branch(&u, present ? 1 : 0, &branch);
      if (present) {
        set(branch);
      } else {
        avro_value_set_null(&branch);
      }
    };
    nullable("lat", t.has_position(), [&](avro_value_t& b) { avro_value_set_double(&b, t.lat); });
    nullable("lon", t.has_position(), [&](avro_value_t& b) { avro_value_set_double(&b, t.lon); });
    for (std::size_t i = 0; i < core::kSignalCount; ++i) {
      const std::string name(core::kSignals[i].name);
      const double v = t.values[i];
      nullable(name.c_str(), !core::absent(v), [&](avro_value_t& b) {
        if (core::kSignals[i].type == core::SignalType::kInt) {
          avro_value_set_long(&b, static_cast<int64_t>(v));
        } else {
          avro_value_set_double(&b, v);
        }
      });
    }
    f = field("flags");
    for (const auto i : t.out_of_range) {
      avro_value_t item;
      avro_value_append(&f, &item, nullptr);
      avro_value_set_string(&item, std::string(core::kSignals[i].name).c_str());
    }
    std::vector<char> buf(4096);
    avro_writer_t w = avro_writer_memory(buf.data(), static_cast<int64_t>(buf.size()));
    EXPECT_EQ(avro_value_write(w, &_value), 0) << avro_strerror();
    const auto n = static_cast<std::size_t>(avro_writer_tell(w));
    avro_writer_free(w);
    return std::string(buf.data(), n);
  }

  /// Reads an Avro body with avro-c; false when avro-c refuses it.
  bool read(std::string_view body, core::Telemetry& t) {
    avro_reader_t r = avro_reader_memory(body.data(), static_cast<int64_t>(body.size()));
    const bool ok = avro_value_read(r, &_value) == 0;
    avro_reader_free(r);
    if (!ok) return false;
    const char* s = nullptr;
    size_t size = 0;
    avro_value_t f = field("car");
    avro_value_get_string(&f, &s, &size);
    t.car.assign(s, size - 1);  // avro-c counts the terminating NUL
    f = field("ts");
    avro_value_get_long(&f, &t.ts);
    f = field("seq");
    avro_value_get_long(&f, &t.seq);
    // The value of a nullable field, or false for null.
    const auto nullable = [&](const char* name, avro_value_t& branch) {
      avro_value_t u = field(name);
      int which = 0;
      avro_value_get_discriminant(&u, &which);
      avro_value_get_current_branch(&u, &branch);
      return which == 1;
    };
    avro_value_t b;
    t.lat = nullable("lat", b) && avro_value_get_double(&b, &t.lat) == 0 ? t.lat : core::kAbsent;
    t.lon = nullable("lon", b) && avro_value_get_double(&b, &t.lon) == 0 ? t.lon : core::kAbsent;
    t.values.assign(core::kSignalCount, core::kAbsent);
    for (std::size_t i = 0; i < core::kSignalCount; ++i) {
      if (nullable(std::string(core::kSignals[i].name).c_str(), b))
        t.values[i] = value_of(b, core::kSignals[i].type);
    }
    f = field("flags");
    std::size_t n = 0;
    avro_value_get_size(&f, &n);
    t.out_of_range.clear();
    for (std::size_t k = 0; k < n; ++k) {
      avro_value_t item;
      avro_value_get_by_index(&f, k, &item, nullptr);
      avro_value_get_string(&item, &s, &size);
      t.out_of_range.push_back(static_cast<uint16_t>(*core::signal_index(std::string_view(s, size - 1))));
    }
    return true;
  }

 private:
  avro_schema_t _schema = nullptr;
  avro_value_iface_t* _iface = nullptr;
  avro_value_t _value{};
  std::string _error;
};

std::string body_of(const std::string& framed) { return framed.substr(kConfluentHeaderSize); }

}  // namespace

TEST(AvroCInterop, AvroCAcceptsTheSchema) {
  AvroC c(car_telemetry_schema());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(is_avro_record(c.schema()));
  EXPECT_STREQ(avro_schema_name(c.schema()), "CarTelemetry");
  EXPECT_STREQ(avro_schema_namespace(c.schema()), "io.fleettwin");
  EXPECT_EQ(avro_schema_record_size(c.schema()), 5 + core::kSignalCount + 1);  // + flags
}

TEST(AvroCInterop, SameBytesBothWays) {
  AvroC c(car_telemetry_schema());
  ASSERT_TRUE(c.ok()) << c.error();
  std::mt19937_64 rng(77);
  for (int i = 0; i < 2000; ++i) {
    core::Telemetry t = i == 0 ? sample_telemetry() : random_telemetry(rng);
    // Every other message lacks some signals (and every third its position), some flagged.
    if (i % 2 == 1) t.values[static_cast<std::size_t>(i) % core::kSignalCount] = core::kAbsent;
    if (i % 3 == 1) t.lat = t.lon = core::kAbsent;
    if (i % 5 == 1) t.out_of_range = {core::kCoolantTemp, core::kControlUnitFirmware};
    std::string ours;
    encode_avro_telemetry(t, 7, ours);
    ASSERT_EQ(body_of(ours), c.write(t)) << i;

    core::Telemetry theirs;
    ASSERT_TRUE(c.read(body_of(ours), theirs)) << avro_strerror();
    ASSERT_TRUE(same_bits(theirs, t)) << i;
  }
}

TEST(AvroCInterop, AnOlderReaderSchemaSkipsFieldsItDoesNotKnow) {
  // Schema evolution: a reader built before control_unit_firmware existed still reads what we write.
  // (avro-c cannot fill reader defaults, so the opposite direction is not testable with it.)
  std::string older = car_telemetry_schema();
  const std::size_t cut = older.find(R"(,{"name":"control_unit_firmware")");
  const std::size_t flags = older.find(R"(,{"name":"flags")");
  ASSERT_NE(cut, std::string::npos);
  ASSERT_NE(flags, std::string::npos);
  older.erase(cut, flags - cut);
  AvroC writer(car_telemetry_schema());
  AvroC reader(older);
  ASSERT_TRUE(writer.ok() && reader.ok()) << reader.error() << older;
  EXPECT_EQ(avro_schema_record_size(reader.schema()), 4 + core::kSignalCount + 1);
  avro_value_iface_t* resolver = avro_resolved_writer_new(writer.schema(), reader.schema());
  ASSERT_NE(resolver, nullptr) << avro_strerror();
  avro_value_iface_t* reader_class = avro_generic_class_from_schema(reader.schema());
  avro_value_t target;
  avro_generic_value_new(reader_class, &target);
  avro_value_t resolved;
  avro_resolved_writer_new_value(resolver, &resolved);
  avro_resolved_writer_set_dest(&resolved, &target);

  std::string ours;
  encode_avro_telemetry(sample_telemetry(), 1, ours);
  const std::string body = body_of(ours);
  avro_reader_t r = avro_reader_memory(body.data(), static_cast<int64_t>(body.size()));
  EXPECT_EQ(avro_value_read(r, &resolved), 0) << avro_strerror();
  avro_reader_free(r);

  avro_value_t f, branch;
  double speed = 0;
  ASSERT_EQ(avro_value_get_by_name(&target, "speed", &f, nullptr), 0);
  avro_value_get_current_branch(&f, &branch);
  avro_value_get_double(&branch, &speed);
  EXPECT_EQ(speed, sample_telemetry().values[core::kSpeed]);
  double accel = 0;
  ASSERT_EQ(avro_value_get_by_name(&target, "accelerometer_2_2_value", &f, nullptr), 0);
  avro_value_get_current_branch(&f, &branch);
  avro_value_get_double(&branch, &accel);
  EXPECT_EQ(accel, sample_telemetry().values[core::kAccelerometer22]);
  EXPECT_NE(avro_value_get_by_name(&target, "control_unit_firmware", &f, nullptr), 0);

  avro_value_decref(&resolved);
  avro_value_decref(&target);
  avro_value_iface_decref(reader_class);
  avro_value_iface_decref(resolver);
}
