#pragma once

#include <optional>
#include <ranges>
#include <string_view>
#include <type_traits>
#include <utility>

namespace fleettwin::core {

/// One enum value and its stable text name, a row of an enum's name table.
/// Each enum's names are written once, in one table, and both directions (value to name, name to value) read
/// that table, so the two can never disagree and no hand-written switch or `if` chain repeats the strings.
template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

/// The enum type named by a table (any range of EnumName<E>: a std::array, a C array, a std::span).
template <typename Table>
using EnumOf = std::remove_cvref_t<decltype(std::ranges::begin(std::declval<const Table&>())->value)>;

/// The name of `value` in `table`, or `fallback` when the table does not list it (an out-of-range value, or
/// one the caller chose to leave unnamed so it shares the fallback).
template <std::ranges::input_range Table>
constexpr std::string_view name_of(const Table& table, EnumOf<Table> value, std::string_view fallback) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return fallback;
}

/// The value whose name is exactly `text` (case-sensitive), or nullopt when no row has that name; the caller
/// decides what unknown text means (a default, an error).
template <std::ranges::input_range Table>
constexpr std::optional<EnumOf<Table>> parse(const Table& table, std::string_view text) {
  for (const auto& entry : table) {
    if (entry.name == text) return entry.value;
  }
  return std::nullopt;
}

}  // namespace fleettwin::core
