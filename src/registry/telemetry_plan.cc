// CarTelemetry records of any writer version read into the reader catalog's Telemetry (Avro spec 1.11,
// "Schema Resolution"), one plan per writer schema.
#include "registry/telemetry_plan.h"

#include <algorithm>
#include <array>
#include <stdexcept>

#include "codec/avro.h"

namespace fleettwin::registry {

namespace {

using core::SignalType;

// Envelope targets of a step; signal targets are the reader's signal indices (>= 0).
constexpr int kSkip = -1;
constexpr int kCar = -2;
constexpr int kTs = -3;
constexpr int kSeq = -4;
constexpr int kLat = -5;
constexpr int kLon = -6;
constexpr int kFlags = -7;

struct Envelope {
  std::string_view name;
  int target;
};
constexpr std::array<Envelope, 6> kEnvelope{
    {{"car", kCar}, {"ts", kTs}, {"seq", kSeq}, {"lat", kLat}, {"lon", kLon}, {"flags", kFlags}}};

constexpr uint32_t bit(AvroKind k) { return 1U << static_cast<unsigned>(k); }
constexpr uint32_t kNumbers =
    bit(AvroKind::kInt) | bit(AvroKind::kLong) | bit(AvroKind::kFloat) | bit(AvroKind::kDouble);
constexpr uint32_t kIntegers = bit(AvroKind::kInt) | bit(AvroKind::kLong);
constexpr uint32_t kText = bit(AvroKind::kString) | bit(AvroKind::kBytes);

// The writer kinds a reader target takes (Avro promotions: int -> long -> float -> double, bytes -> string;
// null, in a union, is an absent reading).
uint32_t readable_kinds(int target, const catalog::Catalog& c) {
  switch (target) {
    case kCar:
      return kText;
    case kTs:
    case kSeq:
      return kIntegers;
    case kLat:
    case kLon:
      return bit(AvroKind::kNull) | kNumbers;
    default:
      break;
  }
  switch (c[static_cast<std::size_t>(target)].type) {
    case SignalType::kInt:
      return bit(AvroKind::kNull) | kIntegers;
    case SignalType::kBool:
      return bit(AvroKind::kNull) | bit(AvroKind::kBoolean);
    case SignalType::kDouble:
      break;
  }
  return bit(AvroKind::kNull) | kNumbers;
}

std::string reader_type(int target, const catalog::Catalog& c) {
  switch (target) {
    case kCar:
      return "string";
    case kTs:
    case kSeq:
      return "long";
    case kLat:
    case kLon:
      return "[null, double]";
    default:
      break;
  }
  return "[null, " + std::string(codec::avro_type(c[static_cast<std::size_t>(target)].type)) + "]";
}

bool text_array(const AvroNode* t) {
  return t->kind == AvroKind::kArray && (bit(t->items->kind) & kText) != 0;
}

/// Reads one datum by a plan's steps. One per TelemetryPlan::decode() call.
class StepReader {
 public:
  explicit StepReader(std::string_view body) : _r(body) {}

  codec::AvroReader& reader() { return _r; }
  const char* problem() const { return _problem != nullptr ? _problem : _r.error(); }

  /// The union branch the datum takes, or `t` itself.
  bool resolve(const AvroNode*& t) {
    if (t->kind != AvroKind::kUnion) return true;
    int64_t b;
    if (!_r.read_long(b)) return false;
    if (b < 0 || static_cast<std::size_t>(b) >= t->branches.size()) return fail("union branch out of range");
    t = t->branches[static_cast<std::size_t>(b)];
    return true;
  }

  /// A number of any kind the plan allowed (null: kAbsent).
  bool number(const AvroNode* t, double& v) {
    if (!resolve(t)) return false;
    switch (t->kind) {
      case AvroKind::kNull:
        v = core::kAbsent;
        return true;
      case AvroKind::kBoolean: {
        bool b;
        if (!_r.read_boolean(b)) return false;
        v = b ? 1 : 0;
        return true;
      }
      case AvroKind::kInt:
      case AvroKind::kLong: {
        int64_t l;
        if (!_r.read_long(l)) return false;
        v = static_cast<double>(l);
        return true;
      }
      case AvroKind::kFloat: {
        float f;
        if (!_r.read_float(f)) return false;
        v = f;
        return true;
      }
      case AvroKind::kDouble:
        return _r.read_double(v);
      default:
        return fail("a branch the plan does not read");
    }
  }

  bool integer(const AvroNode* t, int64_t& v) {
    if (!resolve(t)) return false;
    if ((bit(t->kind) & kIntegers) == 0) return fail("a branch the plan does not read");
    return _r.read_long(v);
  }

  bool text(const AvroNode* t, std::string_view& v) {
    if (!resolve(t)) return false;
    if ((bit(t->kind) & kText) == 0) return fail("a branch the plan does not read");
    return _r.read_string(v);
  }

  /// Reads past one datum of `t`: a writer field the reader does not know.
  bool skip(const AvroNode* t, int depth) {
    if (depth > kMaxSchemaDepth) return fail("nested too deep");
    int64_t l;
    std::string_view s;
    switch (t->kind) {
      case AvroKind::kNull:
        return true;
      case AvroKind::kBoolean: {
        bool b;
        return _r.read_boolean(b);
      }
      case AvroKind::kInt:
      case AvroKind::kLong:
      case AvroKind::kEnum:
        return _r.read_long(l);
      case AvroKind::kFloat:
        return _r.read_fixed(4, s);
      case AvroKind::kDouble:
        return _r.read_fixed(8, s);
      case AvroKind::kString:
      case AvroKind::kBytes:
        return _r.read_string(s);
      case AvroKind::kFixed:
        return _r.read_fixed(static_cast<std::size_t>(t->size), s);
      case AvroKind::kUnion:
        return resolve(t) && skip(t, depth + 1);
      case AvroKind::kRecord:
        return std::all_of(t->fields.begin(), t->fields.end(),
                           [&](const AvroNode::Field& f) { return skip(f.type, depth + 1); });
      case AvroKind::kArray:
      case AvroKind::kMap:
        return _r.read_blocks(t->kind == AvroKind::kMap, kMaxDatumItems,
                              [&](std::string_view) { return skip(t->items, depth + 1); });
    }
    return fail("unknown type");
  }

  bool fail(const char* what) {
    _problem = what;
    return false;
  }

 private:
  codec::AvroReader _r;
  const char* _problem = nullptr;
};

}  // namespace

SignalKeys::SignalKeys(std::shared_ptr<const catalog::Catalog> catalog) : _catalog(std::move(catalog)) {
  for (std::size_t i = 0; i < _catalog->size(); ++i) {
    const auto& s = (*_catalog)[i];
    std::vector<std::string> names{s.name, s.field};
    names.insert(names.end(), s.aliases.begin(), s.aliases.end());
    for (const auto& a : s.aliases) names.push_back(catalog::field_name(a));
    for (auto& n : names) _index.emplace(std::move(n), i);  // the first signal to claim a key keeps it
  }
}

std::optional<std::size_t> SignalKeys::find(std::string_view key) const {
  const auto it = _index.find(key);
  if (it == _index.end()) return std::nullopt;
  return it->second;
}

TelemetryPlan::TelemetryPlan(const AvroSchema& writer, std::shared_ptr<const SignalKeys> keys)
    : _keys(std::move(keys)), _writer(writer) {
  const AvroNode& root = _writer.root();
  if (root.kind != AvroKind::kRecord)
    throw std::invalid_argument("the writer schema is a " + std::string(to_string(root.kind)) +
                                ", not a record");
  const bool named = root.short_name() == "CarTelemetry" ||
                     std::any_of(root.aliases.begin(), root.aliases.end(), [](const std::string& a) {
                       return a == "CarTelemetry" || a.ends_with(".CarTelemetry");
                     });
  if (!named) throw std::invalid_argument("the writer's record " + root.name + " is not CarTelemetry");
  // Envelope targets first (kEnvelope order), then the reader's signals: true once a writer field has it.
  std::vector<bool> taken(kEnvelope.size() + _keys->catalog().size(), false);
  for (const auto& f : root.fields) add_field(f, taken);
  for (std::size_t e = 0; e < 3; ++e) {  // car, ts, seq: a record without them cannot be trusted
    if (!taken[e])
      throw std::invalid_argument("the writer schema has no field " + std::string(kEnvelope[e].name) +
                                  " (required)");
  }
}

void TelemetryPlan::add_field(const AvroNode::Field& f, std::vector<bool>& taken) {
  const auto slot = [](int target) {
    return target >= 0 ? kEnvelope.size() + static_cast<std::size_t>(target)
                       : static_cast<std::size_t>(-target - 2);
  };
  int target = kSkip;
  std::vector<std::string_view> names{f.name};
  names.insert(names.end(), f.aliases.begin(), f.aliases.end());
  for (const auto name : names) {
    const auto e =
        std::find_if(kEnvelope.begin(), kEnvelope.end(), [&](const Envelope& x) { return x.name == name; });
    int candidate = e != kEnvelope.end() ? e->target : kSkip;
    if (const auto i = _keys->find(name); candidate == kSkip && i) candidate = static_cast<int>(*i);
    // The first writer field to claim a reader field keeps it; a later one with the same meaning is skipped.
    if (candidate != kSkip && !taken[slot(candidate)]) {
      target = candidate;
      break;
    }
  }
  if (target == kFlags) {
    if (!text_array(f.type))
      throw std::invalid_argument("field flags: the writer's " + std::string(to_string(f.type->kind)) +
                                  " is not readable as the reader's array of string");
  } else if (target != kSkip) {
    const uint32_t allowed = readable_kinds(target, _keys->catalog());
    const auto readable = [&](const AvroNode* t) { return (bit(t->kind) & allowed) != 0; };
    const bool ok = f.type->kind == AvroKind::kUnion
                        ? std::all_of(f.type->branches.begin(), f.type->branches.end(), readable)
                        : readable(f.type);
    if (!ok) {
      throw std::invalid_argument("field " + f.name + ": the writer's " +
                                  std::string(to_string(f.type->kind)) + " is not readable as the reader's " +
                                  std::string(reader_type(target, _keys->catalog())));
    }
  }
  if (target != kSkip) taken[slot(target)] = true;
  if (target >= 0) _flag_targets.emplace(f.name, static_cast<std::size_t>(target));
  _steps.push_back({f.type, target, f.name});
}

bool TelemetryPlan::decode(std::string_view body, core::Telemetry& t, std::string* error) const {
  StepReader r(body);
  t.values.assign(_keys->catalog().size(), core::kAbsent);
  t.lat = t.lon = core::kAbsent;
  t.out_of_range.clear();
  const auto flag = [&](std::string_view field) {
    if (const auto it = _flag_targets.find(field); it != _flag_targets.end())
      t.out_of_range.push_back(static_cast<uint16_t>(it->second));
    return true;  // a flag naming a field the reader does not know is ignored
  };
  for (const auto& s : _steps) {
    bool ok = false;
    std::string_view text;
    switch (s.target) {
      case kSkip:
        ok = r.skip(s.type, 0);
        break;
      case kCar:
        ok = r.text(s.type, text);
        t.car.assign(text);
        break;
      case kTs:
      case kSeq:
        ok = r.integer(s.type, s.target == kTs ? t.ts : t.seq);
        break;
      case kLat:
      case kLon:
        ok = r.number(s.type, s.target == kLat ? t.lat : t.lon);
        break;
      case kFlags:
        ok = r.reader().read_blocks(false, kMaxDatumItems, [&](std::string_view) {
          return r.text(s.type->items, text) && flag(text);
        });
        break;
      default:
        ok = r.number(s.type, t.values[static_cast<std::size_t>(s.target)]);
        break;
    }
    if (!ok) {
      if (error)
        *error = "CarTelemetry: field " + s.field + " at byte " +
                 std::to_string(codec::kConfluentHeaderSize + r.reader().position()) + ": " + r.problem();
      return false;
    }
  }
  if (!r.reader().at_end()) {
    if (error) *error = "CarTelemetry: " + std::to_string(r.reader().remaining()) + " trailing bytes";
    return false;
  }
  // A flag stands for a reading: one of a value the record does not carry (or flagged twice) is dropped.
  auto& flags = t.out_of_range;
  if (!flags.empty()) {
    std::sort(flags.begin(), flags.end());
    flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
    std::erase_if(flags, [&](uint16_t i) { return core::absent(t.values[i]); });
  }
  return true;
}

}  // namespace fleettwin::registry
