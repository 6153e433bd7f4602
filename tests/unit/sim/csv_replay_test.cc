#include <gtest/gtest.h>

#include <sstream>

#include "core/signals.h"
#include "sim/csv_replay.h"

using namespace fleettwin;
using namespace fleettwin::sim;

namespace {

constexpr char kHeader[] =
    "time,car,coolant_temp,intake_air_temp,intake_air_flow_speed,battery_percentage,battery_voltage,"
    "current_draw,speed,engine_vibration_amplitude,throttle_pos,tire_pressure_1_1,tire_pressure_1_2,"
    "tire_pressure_2_1,tire_pressure_2_2,accelerometer_1_1_value,accelerometer_1_2_value,"
    "accelerometer_2_1_value,accelerometer_2_2_value,control_unit_firmware";
constexpr char kValues[] = "90,20,30,80,380,50,12,1200,0.3,33,33,32,32,0.1,-0.1,0.2,-0.2,1200";
constexpr int64_t k0800 = 1'795'680'000'000;  // 2026-11-26T08:00:00Z

/// Every row `replay` has, read to its end (a failure shows the replay's error).
std::vector<core::Telemetry> replay_all(CsvReplay& replay) {
  std::vector<core::Telemetry> rows;
  core::Telemetry t;
  CsvReplay::Status st;
  while ((st = replay.next(t)) == CsvReplay::Status::kRow) rows.push_back(t);
  EXPECT_EQ(st, CsvReplay::Status::kEnd) << replay.error().to_string();
  return rows;
}

std::string fixture(const std::string& name) { return std::string(FLEETTWIN_FIXTURES) + "/sim/" + name; }

}  // namespace

TEST(CsvTime, AcceptsEpochMsEpochSecondsAndIso8601) {
  EXPECT_EQ(parse_time_ms("1795680000000"), k0800);
  EXPECT_EQ(parse_time_ms("1795680000.5"), k0800 + 500);
  EXPECT_EQ(parse_time_ms("1795680000.0125"), k0800 + 13);  // rounded to the ms
  EXPECT_EQ(parse_time_ms("2026-11-26T08:00:00Z"), k0800);
  EXPECT_EQ(parse_time_ms("2026-11-26T08:00:00.123Z"), k0800 + 123);
  EXPECT_EQ(parse_time_ms("2026-11-26T08:00:00.1Z"), k0800 + 100);
  EXPECT_EQ(parse_time_ms("2026-11-26 08:00:00"), k0800);
  EXPECT_EQ(parse_time_ms("2026-11-26T09:30:00+01:30"), k0800);
  EXPECT_EQ(parse_time_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_time_ms("2024-02-29T00:00:00Z"), 1'709'164'800'000);
  for (const char* bad :
       {"", "abc", "12:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-26T24:00:00Z",
        "2026-11-26T08:00:00Q", "2026-11-26T08:00:00.Z", "-5", "1.2.3", "17956800000x"})
    EXPECT_FALSE(parse_time_ms(bad).has_value()) << bad;
}

TEST(CsvReplay, ReadsTheFixtureWithPerCarSeqAndPositions) {
  CsvReplay replay(fixture("cardata_sample.csv"));
  const auto rows = replay_all(replay);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].car, "car-00001");
  EXPECT_EQ(rows[0].ts, k0800);
  EXPECT_EQ(rows[0].seq, 1);
  EXPECT_DOUBLE_EQ(rows[0].values[core::kCoolantTemp], 88.5);
  EXPECT_DOUBLE_EQ(rows[0].values[core::kThrottlePos], 0.31);
  EXPECT_EQ(rows[0].values[core::kTirePressure21], 32);
  EXPECT_EQ(rows[0].values[core::kControlUnitFirmware], 1200);
  EXPECT_DOUBLE_EQ(rows[0].lat, 48.1371);
  EXPECT_DOUBLE_EQ(rows[0].lon, 11.5754);
  EXPECT_EQ(rows[1].car, "car-00002");
  EXPECT_EQ(rows[1].ts, k0800 + 250);
  EXPECT_EQ(rows[1].seq, 1);
  EXPECT_EQ(rows[2].ts, k0800 + 10'000);  // epoch ms
  EXPECT_EQ(rows[2].seq, 2);
  EXPECT_EQ(rows[3].ts, k0800 + 10'250);  // epoch seconds
  EXPECT_EQ(rows[3].seq, 2);
  EXPECT_EQ(rows[4].seq, 3);            // after a blank line
  EXPECT_EQ(rows[5].car, "car-00002");  // quoted cells
  EXPECT_EQ(rows[5].ts, k0800 + 20'250);
  EXPECT_DOUBLE_EQ(rows[5].values[core::kAccelerometer22], -0.37);
  EXPECT_EQ(replay.line(), 8u);
}

TEST(CsvReplay, ColumnsAreFoundByNameAndPositionDefaultsToTheBoxCentre) {
  // Columns reordered and upper-cased, an extra column, no lat/lon, CRLF line ends.
  std::string header = kHeader;
  std::stringstream in;
  in << "EXTRA,CAR," << header.substr(header.find(',', 5) + 1) << ",TIME\r\n"
     << "x,car-7," << kValues << ",1000\r\n";
  BoundingBox box{10, 20, 30, 50};
  CsvReplay replay(in, box);
  core::Telemetry t;
  ASSERT_EQ(replay.next(t), CsvReplay::Status::kRow) << replay.error().to_string();
  EXPECT_EQ(t.car, "car-7");
  EXPECT_EQ(t.ts, 1000);
  EXPECT_EQ(t.values[core::kCoolantTemp], 90);
  EXPECT_EQ(t.values[core::kControlUnitFirmware], 1200);
  EXPECT_EQ(t.lat, 15);
  EXPECT_EQ(t.lon, 40);
  EXPECT_EQ(replay.next(t), CsvReplay::Status::kEnd);
}

TEST(CsvReplay, BadRowsReportLineAndColumnAndTheReplayContinues) {
  std::stringstream in;
  in << kHeader << "\n"
     << "1000,car-1," << kValues << "\n"                                                      // line 2
     << "2000,car-1,90,20,30,eighty,380,50,12,1200,0.3,33,33,32,32,0.1,-0.1,0.2,-0.2,1200\n"  // line 3
     << "\n"                                                                                  // line 4
     << "yesterday,car-1," << kValues << "\n"                                                 // line 5
     << "3000,car/1," << kValues << "\n"                                                      // line 6
     << "4000,car-1,90,20,30,80,380,50,12,1200,0.3,33.5,33,32,32,0.1,-0.1,0.2,-0.2,1200\n"    // line 7
     << "5000,car-1,90,20\n"                                                                  // line 8
     << "6000,car-1," << kValues << "\n";                                                     // line 9
  CsvReplay replay(in);
  core::Telemetry t;
  ASSERT_EQ(replay.next(t), CsvReplay::Status::kRow);
  EXPECT_EQ(t.seq, 1);

  ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
  EXPECT_EQ(replay.error().line, 3u);
  EXPECT_EQ(replay.error().column, 6u);
  EXPECT_EQ(replay.error().column_name, "battery_percentage");
  EXPECT_EQ(replay.error().to_string(), "line 3, column 6 (battery_percentage): not a number: \"eighty\"");

  ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
  EXPECT_EQ(replay.error().line, 5u);
  EXPECT_EQ(replay.error().column, 1u);
  EXPECT_EQ(replay.error().column_name, "time");

  ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
  EXPECT_EQ(replay.error().line, 6u);
  EXPECT_EQ(replay.error().column_name, "car");

  ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
  EXPECT_EQ(replay.error().line, 7u);
  EXPECT_EQ(replay.error().column_name, "tire_pressure_1_1");

  ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
  EXPECT_EQ(replay.error().line, 8u);
  EXPECT_EQ(replay.error().column, 0u);

  ASSERT_EQ(replay.next(t), CsvReplay::Status::kRow);
  EXPECT_EQ(t.ts, 6000);
  EXPECT_EQ(t.seq, 2);  // rejected rows take no seq
  EXPECT_EQ(replay.next(t), CsvReplay::Status::kEnd);
}

TEST(CsvReplay, HeaderProblemsAreFinal) {
  {
    std::stringstream in("time,car,coolant_temp\n1,car-1,3\n");
    CsvReplay replay(in);
    core::Telemetry t;
    ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
    EXPECT_EQ(replay.error().line, 1u);
    EXPECT_NE(replay.error().message.find("intake_air_temp"), std::string::npos);
    EXPECT_EQ(replay.next(t), CsvReplay::Status::kError);
  }
  {
    std::stringstream in(std::string(kHeader) + ",speed\n");
    CsvReplay replay(in);
    core::Telemetry t;
    ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
    EXPECT_EQ(replay.error().column, 21u);
    EXPECT_NE(replay.error().message.find("duplicate"), std::string::npos);
  }
  {
    std::stringstream in("");
    CsvReplay replay(in);
    core::Telemetry t;
    EXPECT_EQ(replay.next(t), CsvReplay::Status::kError);
  }
  {
    CsvReplay replay(std::string("/nonexistent/cardata.csv"));
    core::Telemetry t;
    ASSERT_EQ(replay.next(t), CsvReplay::Status::kError);
    EXPECT_EQ(replay.error().line, 0u);
    EXPECT_NE(replay.error().to_string().find("/nonexistent/cardata.csv"), std::string::npos);
  }
}

TEST(CsvReplay, OutOfRangeRowsAreReplayedWithTheirValuesFlagged) {
  CsvReplay replay(fixture("cardata_out_of_range.csv"));
  const auto rows = replay_all(replay);
  ASSERT_EQ(rows.size(), 6u);  // every row, none rejected
  EXPECT_TRUE(rows[0].out_of_range.empty());
  // The implausible value itself is kept, and flagged.
  EXPECT_EQ(rows[1].values[core::kCoolantTemp], 171.0);
  EXPECT_EQ(rows[1].out_of_range, std::vector<uint16_t>{core::kCoolantTemp});
  EXPECT_TRUE(rows[2].flagged(core::kCoolantTemp));
  EXPECT_EQ(rows[3].out_of_range, std::vector<uint16_t>{core::kBatteryPercentage});
  EXPECT_EQ(rows[4].out_of_range, (std::vector<uint16_t>{core::kTirePressure12, core::kTirePressure22}));
  EXPECT_EQ(rows[4].values[core::kTirePressure22], -2);
  EXPECT_EQ(rows[4].seq, 2);
  // An empty cell is a signal the row does not carry: absent, not out of range, not an error.
  EXPECT_TRUE(core::absent(rows[5].values[core::kSpeed]));
  EXPECT_TRUE(rows[5].out_of_range.empty());
}
