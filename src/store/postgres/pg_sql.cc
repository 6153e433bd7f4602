#include "store/postgres/pg_sql.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/hex.h"
#include "store/filter_sql.h"
#include "store/twin_blob.h"

namespace fleettwin::store {
namespace {

void append_copy_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\\N";
  } else {
    out += sql_double(v);
  }
}

void append_json_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
  } else {
    out += sql_double(v);
  }
}

}  // namespace

std::string sql_double(double v) {
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  std::array<char, 32> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return {buf.data(), end};
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

int64_t partition_day(int64_t ts_ms) {
  int64_t day = ts_ms / kDayMs;
  if (ts_ms % kDayMs < 0) --day;
  return day;
}

std::string partition_name(int64_t day) {
  return day < 0 ? "telemetry_dm" + std::to_string(-day) : "telemetry_d" + std::to_string(day);
}

int64_t partition_day_of(std::string_view name) {
  constexpr std::string_view kPrefix = "telemetry_d";
  if (!name.starts_with(kPrefix)) return 0;
  name.remove_prefix(kPrefix.size());
  const bool negative = name.starts_with('m');
  if (negative) name.remove_prefix(1);
  int64_t day = 0;
  std::from_chars(name.data(), name.data() + name.size(), day);
  return negative ? -day : day;
}

std::string create_partition_sql(int64_t day) {
  // The bounds are computed integers, never caller text. The first and last days that int64 ms reach have
  // no representable start / next-day start: MINVALUE / MAXVALUE close them.
  const std::string from = day < INT64_MIN / kDayMs ? "MINVALUE" : std::to_string(day * kDayMs);
  const std::string to = day >= INT64_MAX / kDayMs ? "MAXVALUE" : std::to_string((day + 1) * kDayMs);
  return "CREATE TABLE IF NOT EXISTS " + partition_name(day) + " PARTITION OF telemetry FOR VALUES FROM (" +
         from + ") TO (" + to + ")";
}

void append_copy_text(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

void append_copy_row(std::string& out, const TelemetryRow& row, const catalog::Catalog& catalog) {
  const core::Telemetry& t = row.t;
  append_copy_text(out, t.car);
  out += '\t';
  out += std::to_string(t.ts);
  out += '\t';
  out += std::to_string(t.seq);
  out += '\t';
  append_copy_double(out, t.lat);
  out += '\t';
  append_copy_double(out, t.lon);
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    out += '\t';
    append_copy_double(out, i < t.values.size() ? t.values[i] : core::kAbsent);
  }
  out += '\t';
  append_copy_double(out, row.score ? *row.score : core::kAbsent);
  out += '\t';
  const std::string flags = flags_text(t, catalog);
  if (flags.empty()) {
    out += "\\N";
  } else {
    append_copy_text(out, flags);
  }
  out += '\n';
}

void append_copy_twin(std::string& out, const core::Twin& t, const std::vector<FilterField>& fields,
                      const catalog::Catalog& catalog) {
  append_copy_text(out, t.id);
  for (const int64_t v : {t.version, t.reported.seq, t.reported.ts}) {
    out += '\t';
    out += std::to_string(v);
  }
  out += '\t';
  append_copy_text(out, core::to_string(t.health.status));
  out += t.online ? "\tt\t" : "\tf\t";
  out += std::to_string(t.last_seen);
  for (const double v : {t.reported.lat, t.reported.lon, t.health.score}) {
    out += '\t';
    append_copy_double(out, v);
  }
  out += '\t';
  append_copy_text(out, twin_fields_json(t, fields));
  // bytea's hex input form, its backslash escaped for COPY.
  out += "\t\\\\x";
  out += core::to_hex(encode_twin_rest(t, catalog));
  out += '\n';
}

std::vector<FilterField> document_fields(const catalog::Catalog& catalog) {
  std::vector<FilterField> out;
  for (FilterField& f : filter_fields(catalog)) {
    if (twin_column(f.path).empty()) out.push_back(std::move(f));
  }
  return out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      std::array<char, 8> buf{};
      std::snprintf(buf.data(), buf.size(), "\\u%04x", u);
      out += buf.data();
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string twin_fields_json(const core::Twin& twin, const std::vector<FilterField>& fields) {
  std::string out = "{";
  for (const FilterField& f : fields) {
    if (out.size() > 1) out += ',';
    out += json_string(f.path);
    out += ':';
    const FilterValue v = twin_field_value(twin, f);
    if (const double* d = std::get_if<double>(&v)) {
      append_json_number(out, *d);
    } else if (const bool* b = std::get_if<bool>(&v)) {
      out += *b ? "true" : "false";
    } else {
      out += json_string(std::get<std::string>(v));
    }
  }
  return out + "}";
}

std::string PgTwinSql::param(std::string_view text) {
  _params.add(text);
  return "$" + std::to_string(++_count);
}

std::string PgTwinSql::param(int64_t v) {
  _params.add(v);
  return "$" + std::to_string(++_count);
}

std::string PgTwinSql::value(const FilterValue& v) {
  if (const double* d = std::get_if<double>(&v)) {
    _params.add(*d);
    return "$" + std::to_string(++_count) + "::float8";
  }
  if (const bool* b = std::get_if<bool>(&v)) {
    _params.add(*b);
    return "$" + std::to_string(++_count) + "::boolean";
  }
  return param(std::get<std::string>(v)) + "::text";
}

std::string PgTwinSql::field(const FilterField& f) {
  if (const std::string_view column = twin_column(f.path); !column.empty()) return std::string(column);
  const std::string at = "(fields ->> " + param(f.path) + "::text)";
  switch (f.type) {
    case FilterType::kNumber:
      return at + "::float8";
    case FilterType::kBool:
      return at + "::boolean";
    case FilterType::kString:
      break;
  }
  // Bytes order, as the columns (COLLATE "C") and the other stores.
  return "(" + at + " COLLATE \"C\")";
}

std::string PgTwinSql::filter(const Filter& f) {
  return filter_sql(f, [this](const Filter& c) {
    const std::string x = field(c.field);
    const std::string cmp = x + " " + std::string(sql_op(c.op)) + " " + value(c.value);
    if (c.field.type == FilterType::kNumber) return nan_guarded(c.op, x, cmp);
    // A field the twin's document lacks is NULL: COALESCE keeps the expression from being NULL.
    return "COALESCE(" + cmp + ", false)";
  });
}

}  // namespace fleettwin::store
