#include "store/sqlite/car_seq_map.h"

#include <gtest/gtest.h>

#include <string>

namespace fleettwin::store {
namespace {

TEST(CarSeqMap, FindsWhatWasSetThroughGrowth) {
  CarSeqMap m;
  EXPECT_EQ(m.find("car-0"), nullptr);
  constexpr int kCars = 5000;  // several doublings past the first 1024 slots
  for (int i = 0; i < kCars; ++i) m.set("car-" + std::to_string(i), i);
  EXPECT_EQ(m.size(), static_cast<size_t>(kCars));
  for (int i = 0; i < kCars; ++i) {
    const int64_t* seq = m.find("car-" + std::to_string(i));
    ASSERT_NE(seq, nullptr) << i;
    EXPECT_EQ(*seq, i);
  }
  EXPECT_EQ(m.find("car-5000"), nullptr);
  EXPECT_EQ(m.find(""), nullptr);
}

TEST(CarSeqMap, SetOverwritesAndClearEmpties) {
  CarSeqMap m;
  m.set("a", 1);
  m.set("a", 7);
  EXPECT_EQ(m.size(), 1u);
  ASSERT_NE(m.find("a"), nullptr);
  EXPECT_EQ(*m.find("a"), 7);
  m.clear();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.find("a"), nullptr);
  m.set("b", 2);  // usable again after clear
  EXPECT_EQ(*m.find("b"), 2);
}

}  // namespace
}  // namespace fleettwin::store
