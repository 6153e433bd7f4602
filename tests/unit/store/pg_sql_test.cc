// The PostgreSQL store's SQL text that needs no server (store/postgres/pg_sql.h): number formatting,
// partitions, the COPY text format, the twin's `fields` document and the filter translation.
#include "store/postgres/pg_sql.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace fleettwin::store {
namespace {

TEST(PgSql, DoublesAreWrittenInTheirShortestExactForm) {
  for (const double v : {0.1, 1.0 / 3.0, -2.5e-300, 1e300, 123456789.125, -0.0}) {
    const std::string text = sql_double(v);
    EXPECT_EQ(std::stod(text), v) << text;
  }
  EXPECT_EQ(sql_double(0.1), "0.1");
  EXPECT_EQ(sql_double(std::numeric_limits<double>::infinity()), "Infinity");
  EXPECT_EQ(sql_double(-std::numeric_limits<double>::infinity()), "-Infinity");
}

TEST(PgSql, IdentifiersAreQuoted) {
  EXPECT_EQ(quote_ident("Vehicle_Speed"), "\"Vehicle_Speed\"");
  EXPECT_EQ(quote_ident("a\"b"), "\"a\"\"b\"");
}

TEST(PgSql, OnePartitionPerUtcDay) {
  EXPECT_EQ(partition_day(0), 0);
  EXPECT_EQ(partition_day(kDayMs - 1), 0);
  EXPECT_EQ(partition_day(kDayMs), 1);
  EXPECT_EQ(partition_day(-1), -1);
  EXPECT_EQ(partition_day(-kDayMs), -1);
  EXPECT_EQ(partition_day(-kDayMs - 1), -2);
  EXPECT_EQ(partition_name(20454), "telemetry_d20454");
  EXPECT_EQ(partition_name(-3), "telemetry_dm3");
  for (const int64_t day : {int64_t{0}, int64_t{20454}, int64_t{-3}}) {
    EXPECT_EQ(partition_day_of(partition_name(day)), day);
  }
  EXPECT_EQ(create_partition_sql(2),
            "CREATE TABLE IF NOT EXISTS telemetry_d2 PARTITION OF telemetry FOR VALUES FROM (172800000) TO "
            "(259200000)");
  // The first and last days int64 milliseconds reach have no representable bound: MINVALUE / MAXVALUE.
  EXPECT_NE(create_partition_sql(partition_day(INT64_MAX)).find("TO (MAXVALUE)"), std::string::npos);
  EXPECT_NE(create_partition_sql(partition_day(INT64_MIN)).find("FROM (MINVALUE)"), std::string::npos);
}

TEST(PgSql, CopyTextEscapesItsDelimiters) {
  std::string out;
  append_copy_text(out, "a\tb\nc\rd\\e");
  EXPECT_EQ(out, "a\\tb\\nc\\rd\\\\e");
}

TEST(PgSql, CopyRowHasOneFieldPerColumnAndNullForAbsent) {
  const auto catalog = catalog::builtin();
  TelemetryRow row;
  row.t.car = "car\t1";
  row.t.ts = 1000;
  row.t.seq = 7;
  row.t.lat = 48.5;
  row.t.lon = core::kAbsent;
  row.t.values.assign(catalog->size(), 1.5);
  row.t.values[1] = core::kAbsent;
  row.t.out_of_range = {0, 2};
  std::string out;
  append_copy_row(out, row, *catalog);
  ASSERT_EQ(out.back(), '\n');
  std::vector<std::string> fields;
  std::string field;
  for (const char c : out.substr(0, out.size() - 1)) {
    if (c == '\t') {
      fields.push_back(field);
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(field);
  ASSERT_EQ(fields.size(), 5 + catalog->size() + 2);
  EXPECT_EQ(fields[0], "car\\t1");
  EXPECT_EQ(fields[1], "1000");
  EXPECT_EQ(fields[2], "7");
  EXPECT_EQ(fields[3], "48.5");
  EXPECT_EQ(fields[4], "\\N");
  EXPECT_EQ(fields[5], "1.5");
  EXPECT_EQ(fields[6], "\\N");
  EXPECT_EQ(fields[5 + catalog->size()], "\\N");  // no score
  EXPECT_EQ(fields.back(), (*catalog)[0].field + "," + (*catalog)[2].field);

  // A row of a smaller catalog: the signals it lacks are NULL.
  row.t.values.resize(3);
  row.score = 0.25;
  row.t.out_of_range.clear();
  out.clear();
  append_copy_row(out, row, *catalog);
  EXPECT_NE(out.find("\t\\N\t0.25\t\\N\n"), std::string::npos) << out;
}

TEST(PgSql, CopyTwinHasTheTwinsColumnsInOrder) {
  const auto catalog = catalog::builtin();
  core::Twin t;
  t.id = "a\tb";
  t.version = 3;
  t.reported.seq = 9;
  t.reported.ts = 1000;
  t.online = true;
  t.last_seen = 1000;
  t.health.score = core::kAbsent;
  std::string out;
  append_copy_twin(out, t, document_fields(*catalog), *catalog);
  ASSERT_EQ(out.back(), '\n');
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '\t') {
      fields.push_back(out.substr(start, i - start));
      start = i + 1;
    }
  }
  fields.push_back(out.substr(start, out.size() - 1 - start));
  ASSERT_EQ(fields.size(), 12U);
  EXPECT_EQ(fields[0], "a\\tb");
  EXPECT_EQ(fields[1], "3");
  EXPECT_EQ(fields[2], "9");
  EXPECT_EQ(fields[4], "unknown");
  EXPECT_EQ(fields[5], "t");
  EXPECT_EQ(fields[9], "\\N");  // a NaN score
  EXPECT_EQ(fields[10].front(), '{');
  EXPECT_EQ(fields[11].substr(0, 3), "\\\\x");  // bytea hex, its backslash escaped
}

TEST(PgSql, TwinDocumentHoldsTheFieldsWithoutAColumn) {
  const auto catalog = catalog::builtin();
  const std::vector<FilterField> fields = document_fields(*catalog);
  for (const FilterField& f : fields) EXPECT_TRUE(twin_column(f.path).empty()) << f.path;
  EXPECT_EQ(twin_column("_id"), "id");
  EXPECT_EQ(twin_column("connection.online"), "online");
  core::Twin t;
  t.id = "car-1";
  t.reported.values.assign(catalog->size(), core::kAbsent);
  t.reported.values[core::kSpeed] = 12.5;
  t.health.model_version = "m\"1\n";
  t.distance_km = std::numeric_limits<double>::infinity();
  const std::string json = twin_fields_json(t, fields);
  EXPECT_NE(json.find("\"reported.speed\":12.5"), std::string::npos) << json;
  EXPECT_NE(json.find("\"reported.coolant_temp\":null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"health.model_version\":\"m\\\"1\\u000a\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"stats.distance_km\":null"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"_id\""), std::string::npos) << json;
}

TEST(PgSql, FilterValuesArePlaceholdersNeverText) {
  const auto catalog = catalog::builtin();
  const Filter f = parse_filter(
      "health.status == \"x' OR 1=1 --\" && (reported.speed > 3 || connection.online == false) && "
      "health.model_version != \"v\"",
      *catalog);
  PgTwinSql sql;
  const std::string where = sql.filter(f);
  EXPECT_EQ(where.find("OR 1=1"), std::string::npos) << where;
  EXPECT_EQ(where.find("reported.speed"), std::string::npos) << where;
  EXPECT_NE(where.find("status = $1::text"), std::string::npos) << where;
  EXPECT_NE(
      where.find("(fields ->> $2::text)::float8 IS NOT NULL AND (fields ->> $2::text)::float8 > $3::float8"),
      std::string::npos)
      << where;
  EXPECT_NE(where.find("online = $4::boolean"), std::string::npos) << where;
  EXPECT_NE(where.find("COLLATE \"C\""), std::string::npos) << where;
  EXPECT_EQ(sql.params().size(), 6U);
}

TEST(PgSql, ANanNumberMatchesOnlyNotEqual) {
  const auto catalog = catalog::builtin();
  PgTwinSql sql;
  EXPECT_EQ(sql.filter(parse_filter("health.score != 1", *catalog)),
            "(score IS NULL OR score <> $1::float8)");
  EXPECT_EQ(sql.filter(parse_filter("health.score <= 1", *catalog)),
            "(score IS NOT NULL AND score <= $2::float8)");
}

}  // namespace
}  // namespace fleettwin::store
