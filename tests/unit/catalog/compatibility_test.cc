#include <gtest/gtest.h>

#include "catalog/catalog.h"
#include "catalog/compatibility.h"

using namespace fleettwin::catalog;

namespace {

Catalog make(int version, const std::string& signals) {
  return parse_yaml("catalog: t\nversion: " + std::to_string(version) + "\nsignals:\n" + signals, "t");
}

const std::string kA = "  - {name: a, type: int, unit: psi, min: 0, max: 100, part: tyres}\n";
const std::string kB = "  - {name: b, type: double, unit: C, min: 0, max: 1, part: cooling}\n";

bool has(const Compatibility& c, Change::Kind kind, const std::string& signal, bool compatible) {
  for (const auto& ch : c.changes) {
    if (ch.kind == kind && ch.signal == signal && ch.compatible == compatible) return true;
  }
  return false;
}

}  // namespace

TEST(Compatibility, SameCatalogHasNoChanges) {
  const auto r = compare(*builtin(), *builtin());
  EXPECT_TRUE(r.changes.empty());
  EXPECT_TRUE(r.compatible());
  EXPECT_NE(r.report().find("no change"), std::string::npos);
}

TEST(Compatibility, AddingAndRemovingSignalsIsCompatible) {
  const auto r = compare(make(1, kA), make(2, kB));
  EXPECT_TRUE(has(r, Change::Kind::kRemoved, "a", true));
  EXPECT_TRUE(has(r, Change::Kind::kAdded, "b", true));
  EXPECT_TRUE(r.compatible());
}

// One signal changed one way: the change listed, and the verdict.
TEST(Compatibility, EachKindOfChangeToOneSignalHasItsVerdict) {
  const struct {
    std::string older, newer;
    Change::Kind kind;
    std::string signal;
    bool compatible;
  } cases[] = {
      // Avro promotes int to double; nothing else converts.
      {kA, "  - {name: a, type: double, unit: psi, min: 0, max: 100, part: tyres}\n",
       Change::Kind::kTypeChanged, "a", true},
      {kB, "  - {name: b, type: int, unit: C, min: 0, max: 1, part: cooling}\n", Change::Kind::kTypeChanged,
       "b", false},
      {kB, "  - {name: b, type: bool, unit: C, part: cooling}\n", Change::Kind::kTypeChanged, "b", false},
      // A unit change would give one name two meanings; a range or a description does not.
      {kA, "  - {name: a, type: int, unit: kPa, min: 0, max: 100, part: tyres}\n", Change::Kind::kUnitChanged,
       "a", false},
      {kA, "  - {name: a, type: int, unit: psi, min: 0, max: 120, part: tyres}\n",
       Change::Kind::kRangeChanged, "a", true},
      {kA, "  - {name: a, type: int, unit: psi, min: 0, max: 100, part: chassis, description: x}\n",
       Change::Kind::kDescribed, "a", true},
  };
  for (const auto& c : cases) {
    const auto r = compare(make(1, c.older), make(1, c.newer));
    EXPECT_TRUE(has(r, c.kind, c.signal, c.compatible)) << c.newer << r.report();
    EXPECT_EQ(r.compatible(), c.compatible) << c.newer << r.report();
    EXPECT_EQ(r.report().find("INCOMPATIBLE") != std::string::npos, !c.compatible) << r.report();
  }
}

TEST(Compatibility, RenameByAliasIsCompatible) {
  const auto r = compare(make(1, kA), make(2,
                                           "  - {name: Vehicle.A, type: int, unit: psi, min: 0, max: 100, "
                                           "part: tyres, aliases: [a]}\n"));
  EXPECT_TRUE(has(r, Change::Kind::kRenamed, "Vehicle.A", true));
  EXPECT_FALSE(has(r, Change::Kind::kRemoved, "a", true));
  EXPECT_FALSE(has(r, Change::Kind::kAdded, "Vehicle.A", true));
  EXPECT_TRUE(r.compatible());
}

TEST(Compatibility, CardataToVssIsACompatibleRenamePlusAdditions) {
  const auto vss = load_file(std::string(FLEETTWIN_SOURCE_DIR) + "/deploy/catalogs/vss.yaml");
  const auto r = compare(*builtin(), vss);
  int renamed = 0, added = 0;
  for (const auto& c : r.changes) {
    renamed += c.kind == Change::Kind::kRenamed;
    added += c.kind == Change::Kind::kAdded;
  }
  EXPECT_EQ(renamed, 18);
  EXPECT_EQ(added, 7);
  EXPECT_TRUE(r.compatible()) << r.report();
}
