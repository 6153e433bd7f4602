#include <gtest/gtest.h>
#include <simdjson.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>

#include "codec/json_writer.h"

using namespace fleettwin::codec;

namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string dbl(double v) {
  std::string out;
  append_json_double(out, v);
  return out;
}

// What a real JSON parser makes of the text, or "<error>".
std::string parse_string(const std::string& json) {
  simdjson::dom::parser p;
  std::string_view s;
  if (p.parse(json).get_string().get(s)) return "<error>";
  return std::string(s);
}

}  // namespace

TEST(JsonString, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_quoted("plain"), "\"plain\"");
  EXPECT_EQ(json_quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json_quoted(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(json_quoted("\x7f"), "\"\x7f\"");  // DEL is legal in JSON strings
  EXPECT_EQ(json_quoted("/"), "\"/\"");
  EXPECT_EQ(json_quoted(""), "\"\"");
}

TEST(JsonString, PassesValidUtf8Through) {
  EXPECT_EQ(json_quoted("°C"), "\"°C\"");
  EXPECT_EQ(json_quoted("m/s²"), "\"m/s²\"");
  EXPECT_EQ(json_quoted("中文"), "\"中文\"");
  EXPECT_EQ(json_quoted("\xF0\x9F\x9A\x97"), "\"\xF0\x9F\x9A\x97\"");  // U+1F697 (4 bytes)
  EXPECT_EQ(json_quoted("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");  // U+10FFFF, the last code point
}

TEST(JsonString, ReplacesInvalidUtf8SoTheOutputStaysValidJson) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(json_quoted("a\xFF"
                        "b"),
            "\"a" + fffd + "b\"");
  EXPECT_EQ(json_quoted("\xC3"), "\"" + fffd + "\"");                        // truncated 2-byte sequence
  EXPECT_EQ(json_quoted("\xC0\x80"), "\"" + fffd + fffd + "\"");             // overlong NUL
  EXPECT_EQ(json_quoted("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");  // UTF-16 surrogate
  EXPECT_EQ(json_quoted("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // above U+10FFFF
  for (std::string s : {"a\xFF", "\xC3", "x\xE2\x82", "\xF0\x9F\x9A"}) {
    EXPECT_NE(parse_string(json_quoted(s)), "<error>") << json_quoted(s);
  }
}

TEST(JsonString, EveryControlCharacterRoundTripsThroughAParser) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all += "é中\xF0\x9F\x9A\x97";
  EXPECT_EQ(parse_string(json_quoted(all)), all);
}

TEST(JsonString, FindsASpecialByteAtEveryPositionAndLength) {
  // The scanner works eight bytes at a time with an overlapping tail: probe every offset of every length.
  for (std::size_t n = 1; n <= 40; ++n) {
    for (std::size_t at = 0; at < n; ++at) {
      for (const char* special : {"\"", "\\", "\n", "\x01", "\xC3\xA9"}) {
        std::string s(n, 'a');
        s.replace(at, 1, special);
        ASSERT_EQ(parse_string(json_quoted(s)), s) << n << " " << at << " " << json_quoted(s);
      }
      std::string invalid(n, 'a');
      invalid[at] = '\xFF';
      ASSERT_NE(json_quoted(invalid).find("\xEF\xBF\xBD"), std::string::npos) << n << " " << at;
    }
  }
}

TEST(JsonNumber, ShortestRoundTripForm) {
  EXPECT_EQ(dbl(0.1), "0.1");
  EXPECT_EQ(dbl(31), "31");
  EXPECT_EQ(dbl(-3.5), "-3.5");
  EXPECT_EQ(dbl(0.0), "0");
  EXPECT_EQ(dbl(-0.0), "-0.0");  // "-0" would read back as the integer 0
  EXPECT_EQ(dbl(1e300), "1e+300");
  EXPECT_EQ(dbl(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(dbl(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(dbl(-std::numeric_limits<double>::infinity()), "null");
  std::string s;
  append_json_int(s, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(s, "-9223372036854775808");
}

TEST(JsonNumber, RandomDoublesReadBackBitForBit) {
  std::mt19937_64 rng(7);
  char buf[kMaxJsonNumberChars];
  for (int i = 0; i < 100000; ++i) {
    double v = std::bit_cast<double>(rng());
    if (!std::isfinite(v)) continue;
    const std::string_view text(buf, write_json_double(buf, v) - buf);
    ASSERT_LE(text.size(), kMaxJsonNumberChars);
    double back = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), back);
    ASSERT_EQ(r.ec, std::errc{}) << text;
    ASSERT_EQ(std::bit_cast<uint64_t>(back), std::bit_cast<uint64_t>(v)) << text;
  }
  const double worst = -2.2250738585072014e-308;
  EXPECT_LE(static_cast<std::size_t>(write_json_double(buf, worst) - buf), kMaxJsonNumberChars);
}

TEST(JsonNumber, LargeWholeDoublesStayDoublesForAJsonParser) {
  // Found by the json_telemetry fuzzer: 3.64e20 was written as 21 plain digits, which simdjson reads as an
  // integer too big for 64 bits and refuses.
  simdjson::dom::parser p;
  for (const double v : {364144055555555524608.0, 1e20, -1e19, 9007199254740992.0, 1.7976931348623157e308}) {
    const std::string text = dbl(v);
    EXPECT_NE(text.find_first_of(".eE"), std::string::npos) << text;
    double back = 0;
    ASSERT_EQ(p.parse(text).get_double().get(back), simdjson::SUCCESS) << text;
    EXPECT_EQ(back, v) << text;
  }
  EXPECT_EQ(dbl(9007199254740991.0), "9007199254740991");  // below 2^53 the shortest form is kept
  EXPECT_EQ(dbl(12.5), "12.5");
}

TEST(JsonWriter, PlacesCommasInNestedStructures) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("a").integer(1);
  w.key("b")
      .begin_array()
      .number(1.5)
      .string("x")
      .begin_object()
      .end_object()
      .begin_array()
      .end_array()
      .null();
  w.end_array();
  w.key("c").begin_object().key("d").boolean(true).key("e").boolean(false).end_object();
  w.key("f").raw(R"({"g":[1,2]})");
  w.key("k\"ey").string("v");
  w.end_object();
  EXPECT_EQ(out, R"({"a":1,"b":[1.5,"x",{},[],null],"c":{"d":true,"e":false},"f":{"g":[1,2]},"k\"ey":"v"})");
}

TEST(JsonWriter, AppendsToExistingText) {
  std::string out = "prefix ";
  JsonWriter(out).begin_array().integer(1).integer(2).end_array();
  EXPECT_EQ(out, "prefix [1,2]");
}
