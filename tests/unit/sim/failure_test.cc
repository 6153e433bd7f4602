#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "sim/failure.h"

using namespace fleettwin::sim;

TEST(FailureMode, NamesAreStableAndRoundTrip) {
  EXPECT_EQ(to_string(FailureMode::kTyrePressureLoss), "tyre_pressure_loss");
  EXPECT_EQ(to_string(FailureMode::kShockAbsorberFailure), "shock_absorber_failure");
  EXPECT_EQ(to_string(FailureMode::kDriveShaftDegradation), "drive_shaft_degradation");
  EXPECT_EQ(to_string(FailureMode::kCoolantOverheating), "coolant_overheating");
  EXPECT_EQ(to_string(FailureMode::kBatteryCellDegradation), "battery_cell_degradation");
  EXPECT_EQ(to_string(FailureMode::kOutdatedFirmware), "outdated_firmware");
  std::set<std::string_view> names;
  for (FailureMode m : kFailureModes) {
    names.insert(to_string(m));
    EXPECT_EQ(failure_mode_from_string(to_string(m)), m);
  }
  EXPECT_EQ(names.size(), kFailureModeCount);
  EXPECT_FALSE(failure_mode_from_string("tyre_pressure").has_value());
  EXPECT_FALSE(failure_mode_from_string("").has_value());
}

TEST(GroundTruth, JsonLineHasTheDocumentedShape) {
  GroundTruth g{"car-00042", FailureMode::kCoolantOverheating, 1764144000000, 1764144120000};
  EXPECT_EQ(
      to_json_line(g),
      R"({"car":"car-00042","mode":"coolant_overheating","onset_ts":1764144000000,"full_ts":1764144120000})");
}

TEST(GroundTruth, JsonLinesRoundTrip) {
  std::vector<GroundTruth> in;
  for (std::size_t i = 0; i < kFailureModeCount; ++i)
    in.push_back({"car-" + std::to_string(i), kFailureModes[i], 1000 + static_cast<int64_t>(i),
                  121000 + static_cast<int64_t>(i)});
  in.push_back({"odd\"id\\", FailureMode::kOutdatedFirmware, -5, 0});  // escaping survives
  std::stringstream file;
  write_ground_truth(file, in);
  std::vector<GroundTruth> out;
  std::string error;
  ASSERT_TRUE(read_ground_truth(file, out, &error)) << error;
  EXPECT_EQ(out, in);
}

TEST(GroundTruth, ParserAcceptsAnyKeyOrderWhitespaceAndUnknownKeys) {
  GroundTruth g;
  ASSERT_TRUE(parse_ground_truth_line(
      R"( { "full_ts" : 20 , "note":"x", "n": 1.5, "mode":"outdated_firmware","onset_ts":10,"car":"car-1", "b": true } )",
      g));
  EXPECT_EQ(g, (GroundTruth{"car-1", FailureMode::kOutdatedFirmware, 10, 20}));
}

TEST(GroundTruth, ParserRejectsBadLines) {
  GroundTruth g;
  std::string error;
  EXPECT_FALSE(parse_ground_truth_line(R"({"car":"c","mode":"melted","onset_ts":1,"full_ts":2})", g, &error));
  EXPECT_NE(error.find("melted"), std::string::npos);
  EXPECT_FALSE(parse_ground_truth_line(R"({"car":"c","mode":"outdated_firmware","onset_ts":1})", g, &error));
  EXPECT_NE(error.find("full_ts"), std::string::npos);
  EXPECT_FALSE(parse_ground_truth_line(R"({"car":"c","mode":"outdated_firmware","onset_ts":1.5,"full_ts":2})",
                                       g, &error));
  EXPECT_FALSE(parse_ground_truth_line(R"({"car":"c")", g, &error));
  EXPECT_FALSE(parse_ground_truth_line(R"({"car":"c","mode":"outdated_firmware","onset_ts":1,"full_ts":2} x)",
                                       g, &error));
  EXPECT_FALSE(parse_ground_truth_line("", g, &error));
}

TEST(GroundTruth, ReaderReportsTheLineNumberAndSkipsBlankLines) {
  std::stringstream file;
  file << R"({"car":"a","mode":"tyre_pressure_loss","onset_ts":1,"full_ts":2})"
       << "\n\n"
       << R"({"car":"b","mode":"tyre_pressure_loss","onset_ts":3,"full_ts":4})"
       << "\n"
       << R"({"car":"c","mode":"tyre_pressure_loss","onset_ts":"x","full_ts":4})"
       << "\n";
  std::vector<GroundTruth> out;
  std::string error;
  EXPECT_FALSE(read_ground_truth(file, out, &error));
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(error.rfind("line 4:", 0), 0u) << error;
}
