#include "aggregate/flat_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

using fleettwin::aggregate::FlatIndex;

// Inserts and erases at random against a std::map: every id the map holds is found with its value, no other
// is, and entries keep their address while others come and go (the engine holds pointers across inserts).
TEST(FlatIndex, AgreesWithAMapThroughInsertsErasesAndGrowth) {
  FlatIndex<int> index;
  std::map<std::string, int> want;
  std::map<std::string, const FlatIndex<int>::Entry*> address;
  std::mt19937 rng(19);
  for (int step = 0; step < 20000; ++step) {
    const std::string id = "car-" + std::to_string(rng() % 3000);
    if (rng() % 3 == 0) {
      EXPECT_EQ(index.erase(id), want.erase(id) == 1) << id;
      address.erase(id);
    } else if (auto* e = index.find(id); e != nullptr) {
      ASSERT_TRUE(want.contains(id)) << id;
      EXPECT_EQ(e->value, want[id]);
      EXPECT_EQ(e, address[id]) << "an entry moved";
    } else {
      ASSERT_FALSE(want.contains(id)) << id;
      const auto& added = index.insert(id, step);
      want[id] = step;
      address[id] = &added;
    }
  }
  EXPECT_EQ(index.size(), want.size());
  for (const auto& [id, v] : want) {
    const auto* e = index.find(id);
    ASSERT_NE(e, nullptr) << id;
    EXPECT_EQ(e->value, v);
  }
  std::size_t seen = 0;
  index.for_each([&](const auto& e) {
    ++seen;
    EXPECT_EQ(want.at(e.id), e.value);
  });
  EXPECT_EQ(seen, want.size());
  EXPECT_EQ(index.find("car-x"), nullptr);
  EXPECT_FALSE(index.erase("car-x"));
  EXPECT_GE(index.slot_bytes(), 2 * want.size() * sizeof(uint64_t));
}
