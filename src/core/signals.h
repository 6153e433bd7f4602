#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fleettwin::core {

/// Value type of a signal on the wire and in the stores.
enum class SignalType : uint8_t { kDouble, kInt, kBool };

/// One sensor signal of the public cardata-v1 car schema. The catalog below is the single place that
/// names, types, units and plausible ranges live; JSON, Avro, SQLite, MongoDB, the scaler and the dashboard
/// all read it from here. Immutable; any thread.
struct SignalInfo {
  std::string_view name;
  SignalType type;
  std::string_view unit;
  double min;  ///< plausible range: a value outside [min, max] is rejected to the DLQ
  double max;
  std::string_view description;
};

inline constexpr std::size_t kSignalCount = 18;

/// Index of each signal in Telemetry::values. Order is the cardata-v1 CSV column order.
// NOLINTNEXTLINE(performance-enum-size): an index into Telemetry::values, so size_t like the index it is
enum Signal : std::size_t {
  kCoolantTemp = 0,
  kIntakeAirTemp,
  kIntakeAirFlowSpeed,
  kBatteryPercentage,
  kBatteryVoltage,
  kCurrentDraw,
  kSpeed,
  kEngineVibrationAmplitude,
  kThrottlePos,
  kTirePressure11,
  kTirePressure12,
  kTirePressure21,
  kTirePressure22,
  kAccelerometer11,
  kAccelerometer12,
  kAccelerometer21,
  kAccelerometer22,
  kControlUnitFirmware,
};

inline constexpr std::array<SignalInfo, kSignalCount> kSignals{{
    {"coolant_temp", SignalType::kDouble, "°C", -40, 150, "engine coolant temperature"},
    {"intake_air_temp", SignalType::kDouble, "°C", -40, 100, "intake air temperature"},
    {"intake_air_flow_speed", SignalType::kDouble, "g/s", 0, 500, "mass air flow into the engine"},
    {"battery_percentage", SignalType::kDouble, "%", 0, 100, "state of charge of the battery"},
    {"battery_voltage", SignalType::kDouble, "V", 0, 1000, "battery terminal voltage"},
    {"current_draw", SignalType::kDouble, "A", -1000, 1000, "current drawn from the battery"},
    {"speed", SignalType::kDouble, "m/s", 0, 100, "vehicle speed"},
    {"engine_vibration_amplitude", SignalType::kDouble, "mV", 0, 20000, "engine vibration sensor amplitude"},
    {"throttle_pos", SignalType::kDouble, "0..1", 0, 1, "throttle pedal position"},
    {"tire_pressure_1_1", SignalType::kInt, "psi", 0, 100, "front left tyre pressure"},
    {"tire_pressure_1_2", SignalType::kInt, "psi", 0, 100, "front right tyre pressure"},
    {"tire_pressure_2_1", SignalType::kInt, "psi", 0, 100, "rear left tyre pressure"},
    {"tire_pressure_2_2", SignalType::kInt, "psi", 0, 100, "rear right tyre pressure"},
    {"accelerometer_1_1_value", SignalType::kDouble, "m/s²", -100, 100, "front left chassis accelerometer"},
    {"accelerometer_1_2_value", SignalType::kDouble, "m/s²", -100, 100, "front right chassis accelerometer"},
    {"accelerometer_2_1_value", SignalType::kDouble, "m/s²", -100, 100, "rear left chassis accelerometer"},
    {"accelerometer_2_2_value", SignalType::kDouble, "m/s²", -100, 100, "rear right chassis accelerometer"},
    {"control_unit_firmware", SignalType::kInt, "version", 0, 100000, "engine control unit firmware version"},
}};

/// Plausible ranges of the non-signal telemetry fields.
inline constexpr double kLatMin = -90, kLatMax = 90, kLonMin = -180, kLonMax = 180;
/// Longest accepted car id; ids are [A-Za-z0-9_-]{1,64}.
inline constexpr std::size_t kMaxCarIdLength = 64;

/// Index of the signal called `name`, or nullopt.
std::optional<std::size_t> signal_index(std::string_view name);

/// True when `id` is a valid car id: 1..64 characters of [A-Za-z0-9_-].
bool valid_car_id(std::string_view id);

}  // namespace fleettwin::core
