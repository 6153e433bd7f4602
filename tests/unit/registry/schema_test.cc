// The Avro schema model of the schema registry: validation, canonical form, schema resolution (the
// compatibility rules) and the schema-driven datum reader.

#include <gtest/gtest.h>

#include <stdexcept>

#include "codec/avro.h"
#include "registry/schema.h"

using namespace fleettwin::codec;
using namespace fleettwin::registry;

namespace {

AvroSchema parse(const std::string& json) { return AvroSchema::parse(json); }

std::string record(const std::string& fields, const std::string& name = "R") {
  return R"({"type":"record","name":")" + name + R"(","namespace":"t","fields":[)" + fields + "]}";
}

std::vector<std::string> problems(const std::string& reader, const std::string& writer) {
  return avro_read_problems(parse(reader), parse(writer));
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

}  // namespace

TEST(RegistryAvro, CanonicalIgnoresWhitespaceKeyOrderDocsAndNamespaceSpelling) {
  const AvroSchema a = parse(R"({"type":"record","name":"R","namespace":"t","doc":"x",
      "fields":[{"name":"a","type":"int","doc":"the a"},{"name":"b","type":{"type":"string"}}]})");
  const AvroSchema b = parse(R"(  {
      "fields" : [ {"type": "int", "name": "a"}, {"name": "b", "type": "string"} ],
      "name" : "t.R", "type" : "record" } )");
  EXPECT_EQ(a.canonical(), b.canonical());
  EXPECT_EQ(
      a.canonical(),
      R"({"fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}],"name":"t.R","type":"record"})");
}

TEST(RegistryAvro, CanonicalKeepsDefaultsLogicalTypesAndCustomAttributes) {
  const AvroSchema a = parse(record(R"({"name":"a","type":"int","default":1})"));
  const AvroSchema b = parse(record(R"({"name":"a","type":"int","default":2})"));
  EXPECT_NE(a.canonical(), b.canonical());
  const AvroSchema ts = parse(R"({"type":"long","logicalType":"timestamp-millis","x-owner":"ops"})");
  EXPECT_EQ(ts.canonical(), R"({"logicalType":"timestamp-millis","type":"long","x-owner":"ops"})");
  EXPECT_EQ(ts.root().logical_type, "timestamp-millis");
}

TEST(RegistryAvro, AnAttributeGivenTwiceCountsOnceInTheCanonicalText) {
  // Found by fuzzing (tests/fuzz/corpus/registry_schema/crash-*): both values were appended, so the canonical
  // text ({"x":nullnull}) was not JSON.
  const AvroSchema a = parse(R"({"type":"string","x-owner":null,"x-owner":"ops","doc":"d","doc":"e"})");
  EXPECT_EQ(a.canonical(), R"({"type":"string","x-owner":null})");
  EXPECT_EQ(parse(a.canonical()).canonical(), a.canonical());
  const AvroSchema r = parse(record(R"({"name":"a","type":"int","x":[1],"x":{"y":2}})"));
  EXPECT_EQ(parse(r.canonical()).canonical(), r.canonical());
  EXPECT_NE(r.canonical().find(R"("x":[1])"), std::string::npos) << r.canonical();
}

TEST(RegistryAvro, ResolvesNamesInTheEnclosingNamespace) {
  const AvroSchema s = parse(R"({"type":"record","name":"Outer","namespace":"a.b","fields":[
      {"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"}]}},
      {"name":"again","type":"Inner"},
      {"name":"full","type":"a.b.Inner"},
      {"name":"e","type":{"type":"enum","name":"E","namespace":"c","symbols":["A","B"]}},
      {"name":"e2","type":"c.E"}]})");
  const AvroNode& root = s.root();
  ASSERT_EQ(root.fields.size(), 5u);
  EXPECT_EQ(root.fields[0].type->name, "a.b.Inner");
  EXPECT_EQ(root.fields[1].type, root.fields[0].type);
  EXPECT_EQ(root.fields[2].type, root.fields[0].type);
  EXPECT_EQ(root.fields[3].type->name, "c.E");
  EXPECT_EQ(root.fields[4].type, root.fields[3].type);
}

TEST(RegistryAvro, AcceptsRecursiveRecords) {
  const AvroSchema s = parse(R"({"type":"record","name":"Node","fields":[{"name":"v","type":"int"},
      {"name":"next","type":["null","Node"],"default":null}]})");
  EXPECT_EQ(s.root().fields[1].type->branches[1], &s.root());
  EXPECT_TRUE(avro_read_problems(s, s).empty());
}

TEST(RegistryAvro, RefusesInvalidSchemas) {
  const char* bad[] = {
      "not json",
      "42",
      R"("nosuchtype")",
      R"({"type":"record","fields":[]})",                         // no name
      R"({"type":"record","name":"R"})",                          // no fields
      R"({"type":"record","name":"1R","fields":[]})",             // invalid name
      R"({"type":"record","name":"int","fields":[]})",            // a primitive's name
      R"({"type":"record","name":"R","fields":[{"name":"a"}]})",  // field without type
      R"({"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]})",
      R"({"type":"record","name":"R","fields":[{"name":"a","type":{"type":"record","name":"R","fields":[]}}]})",
      R"({"type":"enum","name":"E","symbols":["A","A"]})",
      R"({"type":"enum","name":"E","symbols":["A"],"default":"B"})",
      R"({"type":"enum","name":"E"})",
      R"({"type":"array"})",
      R"({"type":"map"})",
      R"({"type":"fixed","name":"F"})",
      R"({"type":"fixed","name":"F","size":-1})",
      R"(["int","int"])",
      R"(["int",["string"]])",
      R"({"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]})",
      R"({"type":"record","name":"R","fields":[{"name":"a","type":"int","default":3000000000}]})",
      R"({"type":"record","name":"R","fields":[{"name":"a","type":"long","default":1.5}]})",
      R"({"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":"int"},"default":[1,"x"]}]})",
      R"({"type":"record","name":"R","fields":[{"name":"a","type":["null","int"],"default":"x"}]})",
  };
  for (const char* s : bad) {
    EXPECT_THROW(parse(s), std::invalid_argument) << s;
  }
}

TEST(RegistryAvro, AcceptsValidDefaults) {
  EXPECT_NO_THROW(parse(record(R"({"name":"a","type":"double","default":0},
      {"name":"b","type":["null","string"],"default":null},
      {"name":"c","type":["string","null"],"default":null},
      {"name":"d","type":{"type":"map","values":"long"},"default":{"x":1}},
      {"name":"e","type":{"type":"record","name":"S","fields":[{"name":"x","type":"int","default":0}]},"default":{}},
      {"name":"f","type":{"type":"enum","name":"E","symbols":["A","B"]},"default":"B"},
      {"name":"g","type":"boolean","default":false},
      {"name":"h","type":"bytes","default":"\u00ff"})")));
}

TEST(RegistryAvro, RefusesSchemasNestedTooDeep) {
  std::string s;
  for (int i = 0; i < 100; ++i) s += R"({"type":"array","items":)";
  s += R"("int")";
  for (int i = 0; i < 100; ++i) s += "}";
  EXPECT_THROW(parse(s), std::invalid_argument);
}

// ---- schema resolution ---------------------------------------------------------------------------------

TEST(RegistryAvroCompat, AddingAFieldNeedsADefault) {
  const std::string v1 = record(R"({"name":"a","type":"int"})");
  EXPECT_TRUE(
      problems(record(R"({"name":"a","type":"int"},{"name":"b","type":"string","default":""})"), v1).empty());
  const auto p = problems(record(R"({"name":"a","type":"int"},{"name":"b","type":"string"})"), v1);
  ASSERT_EQ(p.size(), 1u) << joined(p);
  EXPECT_EQ(p[0], "R.b: field added without a default");
}

TEST(RegistryAvroCompat, RemovingAFieldIsFine) {
  EXPECT_TRUE(problems(record(R"({"name":"a","type":"int"})"),
                       record(R"({"name":"a","type":"int"},{"name":"b","type":"string"})"))
                  .empty());
}

TEST(RegistryAvroCompat, Promotions) {
  const auto one = [](const char* type) {
    return record(std::string(R"({"name":"a","type":")") + type + "\"}");
  };
  const std::pair<const char*, const char*> legal[] = {
      {"int", "long"},    {"int", "float"},    {"int", "double"},   {"long", "float"},
      {"long", "double"}, {"float", "double"}, {"string", "bytes"}, {"bytes", "string"},
  };
  for (const auto& [writer, reader] : legal) {
    EXPECT_TRUE(problems(one(reader), one(writer)).empty()) << writer << " -> " << reader;
  }
  const std::pair<const char*, const char*> illegal[] = {
      {"long", "int"},    {"double", "float"}, {"string", "int"}, {"int", "string"},
      {"boolean", "int"}, {"double", "long"},  {"null", "int"},
  };
  for (const auto& [writer, reader] : illegal) {
    const auto p = problems(one(reader), one(writer));
    ASSERT_EQ(p.size(), 1u) << writer << " -> " << reader;
    EXPECT_EQ(p[0], std::string("R.a: type changed from ") + writer + " to " + reader);
  }
}

TEST(RegistryAvroCompat, RecordsMatchByNameOrAlias) {
  const std::string w = record(R"({"name":"a","type":"int"})", "Old");
  EXPECT_FALSE(problems(record(R"({"name":"a","type":"int"})", "New"), w).empty());
  EXPECT_TRUE(problems(R"({"type":"record","name":"New","namespace":"t","aliases":["Old"],
      "fields":[{"name":"a","type":"int"}]})",
                       w)
                  .empty());
  // A renamed field is read through the reader field's alias.
  EXPECT_TRUE(
      problems(record(R"({"name":"b","type":"int","aliases":["a"]})"), record(R"({"name":"a","type":"int"})"))
          .empty());
}

TEST(RegistryAvroCompat, Enums) {
  const auto e = [](const char* symbols, const char* extra = "") {
    return std::string(R"({"type":"enum","name":"E","symbols":[)") + symbols + "]" + extra + "}";
  };
  EXPECT_TRUE(problems(e(R"("A","B","C")"), e(R"("A","B")")).empty());
  const auto p = problems(e(R"("A")"), e(R"("A","B")"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("enum symbol B removed"), std::string::npos) << p[0];
  EXPECT_TRUE(problems(e(R"("A","Z")", R"(,"default":"Z")"), e(R"("A","B")")).empty());
}

TEST(RegistryAvroCompat, ArraysMapsAndFixed) {
  EXPECT_TRUE(problems(R"({"type":"array","items":"long"})", R"({"type":"array","items":"int"})").empty());
  EXPECT_FALSE(problems(R"({"type":"array","items":"int"})", R"({"type":"array","items":"long"})").empty());
  EXPECT_TRUE(problems(R"({"type":"map","values":"double"})", R"({"type":"map","values":"float"})").empty());
  EXPECT_FALSE(
      problems(R"({"type":"map","values":"string"})", R"({"type":"array","items":"string"})").empty());
  EXPECT_TRUE(
      problems(R"({"type":"fixed","name":"F","size":4})", R"({"type":"fixed","name":"F","size":4})").empty());
  EXPECT_FALSE(
      problems(R"({"type":"fixed","name":"F","size":8})", R"({"type":"fixed","name":"F","size":4})").empty());
  // Nested: a record inside an array inside a record.
  const auto nested = [](const char* extra) {
    return record(
        std::string(R"({"name":"xs","type":{"type":"array","items":{"type":"record","name":"X","fields":[
        {"name":"a","type":"int"})") +
        extra + "]}}}");
  };
  EXPECT_TRUE(problems(nested(R"(,{"name":"b","type":"int","default":0})"), nested("")).empty());
  const auto p = problems(nested(R"(,{"name":"b","type":"int"})"), nested(""));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "R.xs[].b: field added without a default");
}

TEST(RegistryAvroCompat, Unions) {
  // Widening a field to an optional one: every writer value is readable.
  EXPECT_TRUE(problems(record(R"({"name":"a","type":["null","int"],"default":null})"),
                       record(R"({"name":"a","type":"int"})"))
                  .empty());
  // The reverse fails: the writer may have written null.
  EXPECT_FALSE(problems(record(R"({"name":"a","type":"int"})"),
                        record(R"({"name":"a","type":["null","int"],"default":null})"))
                   .empty());
  // Union to union: each writer branch needs a reader branch; promotions count.
  EXPECT_TRUE(problems(R"(["null","long","string"])", R"(["int","null"])").empty());
  EXPECT_FALSE(problems(R"(["null","long"])", R"(["null","string"])").empty());
}

TEST(RegistryAvroCompat, RecursiveTypesTerminate) {
  const std::string list = R"({"type":"record","name":"L","fields":[{"name":"v","type":"int"},
      {"name":"next","type":["null","L"],"default":null}]})";
  const std::string wider = R"({"type":"record","name":"L","fields":[{"name":"v","type":"long"},
      {"name":"next","type":["null","L"],"default":null},{"name":"w","type":"int","default":0}]})";
  EXPECT_TRUE(problems(wider, list).empty());
  EXPECT_FALSE(problems(list, wider).empty());
}

// ---- datum reader --------------------------------------------------------------------------------------

TEST(RegistryAvroDatum, PrintsEveryType) {
  const AvroSchema s = parse(record(R"({"name":"n","type":"null"},{"name":"b","type":"boolean"},
      {"name":"i","type":"int"},{"name":"l","type":"long"},{"name":"f","type":"float"},{"name":"d","type":"double"},
      {"name":"s","type":"string"},{"name":"y","type":"bytes"},{"name":"x","type":{"type":"fixed","name":"F","size":2}},
      {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
      {"name":"a","type":{"type":"array","items":"int"}},{"name":"m","type":{"type":"map","values":"string"}},
      {"name":"u","type":["null","string"]},{"name":"v","type":["null","string"]})"));
  std::string body;
  char buf[256];
  AvroWriter w(buf);
  w.write_boolean(true);
  w.write_int(-3);
  w.write_long(1LL << 40);
  body.assign(buf, w.position());
  const float f = 1.5f;
  body.append(reinterpret_cast<const char*>(&f), 4);  // little-endian machine
  AvroWriter w2(buf);
  w2.write_double(0.25);
  w2.write_string("hé");
  w2.write_string(std::string("\x00\xff", 2));
  body.append(buf, w2.position());
  body.append("\x01\x02", 2);  // fixed
  AvroWriter w3(buf);
  w3.write_int(1);    // enum B
  w3.write_long(-2);  // array block of 2 with a byte size
  w3.write_long(2);
  w3.write_int(7);
  w3.write_int(8);
  w3.write_long(0);
  w3.write_long(1);  // map block of 1
  w3.write_string("k");
  w3.write_string("v");
  w3.write_long(0);
  w3.write_long(0);  // union: null
  w3.write_long(1);  // union: string
  w3.write_string("z");
  body.append(buf, w3.position());

  std::string json, error;
  ASSERT_TRUE(avro_datum_to_json(s, body, json, &error)) << error;
  EXPECT_EQ(
      json,
      R"({"n":null,"b":true,"i":-3,"l":1099511627776,"f":1.5,"d":0.25,"s":"hé","y":"\u0000ÿ","x":"\u0001\u0002",)"
      R"("e":"B","a":[7,8],"m":{"k":"v"},"u":null,"v":{"string":"z"}})");

  EXPECT_FALSE(avro_datum_to_json(s, body.substr(0, body.size() - 1), json, &error));
  EXPECT_FALSE(avro_datum_to_json(s, body + "x", json, &error));
  EXPECT_NE(error.find("trailing"), std::string::npos) << error;
}

TEST(RegistryAvroDatum, RefusesHugeBlockCountsOfEmptyItems) {
  const AvroSchema s = parse(R"({"type":"array","items":"null"})");
  char buf[16];
  AvroWriter w(buf);
  w.write_long(1LL << 40);
  std::string json, error;
  EXPECT_FALSE(avro_datum_to_json(s, std::string(buf, w.position()), json, &error));
}
