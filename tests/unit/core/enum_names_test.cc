#include <gtest/gtest.h>

#include <array>
#include <span>

#include "core/enum_names.h"

using namespace fleettwin::core;

namespace {

enum class Color { kRed, kGreen, kBlue, kUnlisted };

constexpr std::array<EnumName<Color>, 3> kColorNames{{
    {Color::kRed, "red"},
    {Color::kGreen, "green"},
    {Color::kBlue, "blue"},
}};

}  // namespace

TEST(EnumNames, NameOfEveryListedValue) {
  EXPECT_EQ(name_of(kColorNames, Color::kRed, "?"), "red");
  EXPECT_EQ(name_of(kColorNames, Color::kGreen, "?"), "green");
  EXPECT_EQ(name_of(kColorNames, Color::kBlue, "?"), "blue");
}

TEST(EnumNames, UnlistedOrOutOfRangeValueGetsTheFallback) {
  EXPECT_EQ(name_of(kColorNames, Color::kUnlisted, "?"), "?");
  EXPECT_EQ(name_of(kColorNames, static_cast<Color>(42), "none"), "none");
}

TEST(EnumNames, ParseIsTheInverseOfNameOf) {
  for (const auto& [value, name] : kColorNames) {
    EXPECT_EQ(parse(kColorNames, name), value);
    EXPECT_EQ(parse(kColorNames, name_of(kColorNames, value, "")), value);
  }
}

TEST(EnumNames, UnknownTextIsNullopt) {
  EXPECT_EQ(parse(kColorNames, "purple"), std::nullopt);
  EXPECT_EQ(parse(kColorNames, ""), std::nullopt);
  EXPECT_EQ(parse(kColorNames, "Red"), std::nullopt);  // case-sensitive
  EXPECT_EQ(parse(kColorNames, "re"), std::nullopt);   // whole names only
}

TEST(EnumNames, ASpanReadsOnlyItsRows) {
  const auto first_two = std::span(kColorNames).first<2>();
  EXPECT_EQ(parse(first_two, "green"), Color::kGreen);
  EXPECT_EQ(parse(first_two, "blue"), std::nullopt);
  EXPECT_EQ(name_of(first_two, Color::kBlue, "?"), "?");
}

TEST(EnumNames, UsableAtCompileTime) {
  static_assert(name_of(kColorNames, Color::kBlue, "?") == "blue");
  static_assert(parse(kColorNames, "green") == Color::kGreen);
  static_assert(!parse(kColorNames, "purple").has_value());
}
