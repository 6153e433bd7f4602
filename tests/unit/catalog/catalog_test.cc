#include <gtest/gtest.h>

#include <string>

#include "catalog/catalog.h"
#include "core/signals.h"

using namespace fleettwin::catalog;
using fleettwin::core::SignalType;

namespace {

const std::string kDir = std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/";

std::string one_signal(const std::string& fields) {
  return "catalog: t\nversion: 1\nsignals:\n  - {" + fields + "}\n";
}

// The error parse_yaml gives, or "" when the text is a valid catalog.
std::string error_of(const std::string& yaml) {
  try {
    parse_yaml(yaml, "t.yaml");
    return "";
  } catch (const CatalogError& e) {
    return e.what();
  }
}

}  // namespace

TEST(Catalog, BuiltinIsCardataV1AndAgreesWithTheCompiledTable) {
  const auto c = builtin();
  EXPECT_EQ(c->label(), "cardata v1");
  ASSERT_EQ(c->size(), fleettwin::core::kSignalCount);
  for (std::size_t i = 0; i < c->size(); ++i) {
    const auto& s = (*c)[i];
    const auto& t = fleettwin::core::kSignals[i];
    EXPECT_EQ(s.name, t.name);
    EXPECT_EQ(s.field, t.name);
    EXPECT_EQ(s.type, t.type) << s.name;
    EXPECT_EQ(s.unit, t.unit) << s.name;
    EXPECT_EQ(s.min, t.min) << s.name;
    EXPECT_EQ(s.max, t.max) << s.name;
    EXPECT_EQ(s.description, t.description) << s.name;
  }
  EXPECT_EQ((*c)[c->index_of("coolant_temp")].part, Part::kCooling);
  EXPECT_EQ((*c)[c->index_of("tire_pressure_2_2")].part, Part::kTyres);
  EXPECT_EQ(builtin(), builtin()) << "built once";
}

TEST(Catalog, ShippedFilesLoadAndTheBuiltinIsTheCardataFile) {
  EXPECT_EQ(load_file(kDir + "cardata-v1.yaml"), *builtin());
  const auto vss = load_file(kDir + "vss.yaml");
  EXPECT_EQ(vss.label(), "vss v2");
  EXPECT_EQ(vss.size(), 25u);
  // Every cardata-v1 signal is in the VSS catalog under its VSS path, with the cardata name as an alias.
  for (const auto& s : builtin()->signals()) {
    const auto i = vss.find(s.name);
    ASSERT_TRUE(i.has_value()) << s.name;
    EXPECT_EQ(vss[*i].since, 1) << s.name;
    EXPECT_EQ(vss[*i].unit, s.unit) << s.name;
  }
  const auto speed = vss.index_of("Vehicle.Speed");
  EXPECT_EQ(vss[speed].field, "Vehicle_Speed");
  EXPECT_EQ(vss.find("Vehicle_Speed"), speed);
  EXPECT_EQ(vss.find("speed"), speed);
  EXPECT_EQ(vss.signals_as_of(1).size(), 18u);
  EXPECT_EQ(vss.signals_as_of(2).size(), 25u);
  EXPECT_EQ(vss[vss.index_of("Vehicle.IsMoving")].type, SignalType::kBool);
}

TEST(Catalog, YamlRoundTrips) {
  for (const char* f : {"cardata-v1.yaml", "vss.yaml"}) {
    const auto c = load_file(kDir + f);
    EXPECT_EQ(parse_yaml(to_yaml(c), "round trip"), c) << f;
  }
}

TEST(Catalog, TextThatIsNotUtf8IsRefused) {
  // Found by fuzzing (tests/fuzz/corpus/catalog_yaml/crash-*): a description holding a byte that is not UTF-8
  // was accepted and did not survive to_yaml and back.
  EXPECT_NE(error_of(one_signal("name: a, type: int, description: \"re\xff\x06ar\"")).find("not UTF-8"),
            std::string::npos);
  EXPECT_NE(error_of(one_signal("name: a, type: int, description: x\xc0\xaf")).find("not UTF-8"),
            std::string::npos);  // an overlong '/'
  EXPECT_NE(error_of(one_signal("name: a, type: int, description: x\xed\xa0\x80")).find("not UTF-8"),
            std::string::npos);  // a surrogate
  EXPECT_NE(error_of(one_signal("name: a, type: int, description: x\xe2\x82")).find("not UTF-8"),
            std::string::npos);  // truncated
  const std::string ok = one_signal(
      "name: a, type: double, min: 0, max: 1, part: cooling, unit: \"m/s\xc2\xb2 \xe2\x82\xac "
      "\xf0\x9f\x9a\x97\"");
  EXPECT_EQ(error_of(ok), "");
  const auto c = parse_yaml(ok, "t.yaml");
  EXPECT_EQ(parse_yaml(to_yaml(c), "round trip"), c);
}

TEST(Catalog, LookupIsExactAndIndexOfNamesTheCatalog) {
  const auto c = builtin();
  EXPECT_FALSE(c->find("Speed").has_value());
  EXPECT_FALSE(c->find("").has_value());
  try {
    c->index_of("sped");
    FAIL() << "no throw";
  } catch (const CatalogError& e) {
    EXPECT_NE(std::string(e.what()).find("cardata v1 has no signal \"sped\""), std::string::npos) << e.what();
  }
}

TEST(Catalog, FieldNamesAreIdentifiers) {
  EXPECT_EQ(field_name("Vehicle.Cabin.Temp"), "Vehicle_Cabin_Temp");
  EXPECT_EQ(field_name("speed"), "speed");
}

TEST(Catalog, InvalidCatalogsAreRefusedWithWhereAndWhy) {
  const std::string ok = "name: a, type: double, unit: x, min: 0, max: 1, part: body";
  EXPECT_EQ(error_of(one_signal(ok)), "");
  const struct {
    std::string yaml;
    std::string expected;
  } cases[] = {
      {"catalog: t\nversion: 1\nsignals: [\n", "t.yaml:"},
      {"catalog: t\nversion: 0\nsignals:\n  - {" + ok + "}\n", "version"},
      {"catalog: t\nversion: 1\nsignals: []\n", "at least one signal"},
      {"catalog: t\nversion: 1\nsignal: []\n", "signal: unknown key"},
      {"catalog: 'a b'\nversion: 1\nsignals:\n  - {" + ok + "}\n", "not a catalog name"},
      {one_signal(ok + ", colour: red"), "signals[0].colour: unknown key"},
      {one_signal("name: a, type: float, min: 0, max: 1, part: body"), "t.yaml:4: signals[0].type"},
      {one_signal("name: a, type: double, min: 2, max: 1, part: body"), "min <= max"},
      {one_signal("name: a, type: double, min: x, max: 1, part: body"), "signals[0].min: expected a finite"},
      {one_signal("name: a, type: double, max: 1, part: body"), "signals[0].min: missing"},
      {one_signal("name: a, type: double, min: .nan, max: 1, part: body"), "finite"},
      {one_signal("name: a, type: double, min: 0, max: 1, part: engine"), "signals[0].part"},
      {one_signal("name: a..b, type: double, min: 0, max: 1, part: body"), "not a signal name"},
      {one_signal("name: 1a, type: double, min: 0, max: 1, part: body"), "not a signal name"},
      {one_signal("name: a b, type: double, min: 0, max: 1, part: body"), "not a signal name"},
      {one_signal("name: " + std::string(129, 'a') + ", type: double, min: 0, max: 1, part: body"),
       "not a signal name"},
      {one_signal("name: car, type: double, min: 0, max: 1, part: body"), "reserved"},
      {one_signal("name: x, type: double, min: 0, max: 1, part: body, aliases: [seq]"), "reserved"},
      {one_signal("name: x, type: double, min: 0, max: 1, part: body, since: 2"), "since"},
      {one_signal("name: x, type: bool, min: 0, max: 5, part: body"), "bool"},
      {one_signal("name: x, type: int, min: 0, max: 1e300, part: body"), "2^53"},
      {"catalog: t\nversion: 1\nsignals:\n  - {" + ok + "}\n  - {" + ok + "}\n", "already names signal a"},
      {"catalog: t\nversion: 1\nsignals:\n  - {name: a.b, type: int, min: 0, max: 1, part: body}\n"
       "  - {name: a_b, type: int, min: 0, max: 1, part: body}\n",
       "\"a_b\" already names signal a.b"},
      {"catalog: t\nversion: 1\nsignals:\n  - {name: a, type: int, min: 0, max: 1, part: body, aliases: "
       "[b]}\n"
       "  - {name: b, type: int, min: 0, max: 1, part: body}\n",
       "\"b\" already names signal a"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c.yaml);
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.yaml << "\n=> " << e;
  }
}

TEST(Catalog, TooManySignalsOrAliasesAreRefused) {
  std::string yaml = "catalog: t\nversion: 1\nsignals:\n";
  for (int i = 0; i <= 1024; ++i) {
    yaml += "  - {name: s" + std::to_string(i) + ", type: int, min: 0, max: 1, part: body}\n";
  }
  EXPECT_NE(error_of(yaml).find("more than 1024"), std::string::npos);
  std::string aliases;
  for (int i = 0; i < 17; ++i) aliases += (i ? ", a" : "a") + std::to_string(i);
  EXPECT_NE(error_of(one_signal("name: x, type: int, min: 0, max: 1, part: body, aliases: [" + aliases + "]"))
                .find("more than 16 aliases"),
            std::string::npos);
}

TEST(Catalog, MissingOrOversizedFilesAreClearErrors) {
  try {
    load_file("/nonexistent/catalog.yaml");
    FAIL();
  } catch (const CatalogError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read"), std::string::npos);
  }
  EXPECT_NE(error_of(std::string(5 * 1024 * 1024, '#')).find("larger than 4 MiB"), std::string::npos);
  EXPECT_EQ(load_or_builtin(""), builtin());
}
