#include "ml/promotion_gate.h"

#include <gtest/gtest.h>

namespace fleettwin::ml {
namespace {

// Two models over one shadow period of 2,000 car-hours: both raise the same 20 alerts on failing cars.
PromotionInput alike() {
  PromotionInput in;
  in.active.events = 720'000;
  in.active.alerts = 20;
  in.active.car_hours = 2'000;
  in.candidate = in.active;
  in.agreement = 0.999;
  return in;
}

bool mentions(const PromotionDecision& d, const std::string& word) {
  for (const auto& r : d.reasons)
    if (r.find(word) != std::string::npos) return true;
  return false;
}

TEST(PromotionGate, PromotesAnEqualCandidateAndSaysWhatItCompared) {
  const auto d = promotion_gate(alike(), PromotionMargins{});
  EXPECT_TRUE(d.promote);
  EXPECT_EQ(d.reasons.size(), 5u);
  EXPECT_TRUE(mentions(d, "false alerts"));
}

TEST(PromotionGate, PromotesACandidateWithoutTheActiveModelsFalseAlerts) {
  // The active model alarms on 6 healthy cars at low charge, which the retrained candidate no longer does.
  auto in = alike();
  in.active.alerts = 26;
  in.active.alerts_other_missed = 6;
  in.active.unfamiliar_events = 900;
  in.agreement = 0.998;
  EXPECT_EQ(in.active.estimated_false_alerts(), 6);
  EXPECT_DOUBLE_EQ(in.active.estimated_false_per_1000_car_hours(), 3.0);
  EXPECT_TRUE(promotion_gate(in, PromotionMargins{}).promote);
}

TEST(PromotionGate, RefusesACandidateWithMoreFalseAlerts) {
  auto in = alike();
  in.candidate.alerts = 30;
  in.candidate.alerts_other_missed = 10;  // 5 per 1,000 car-hours more than the active model
  const auto d = promotion_gate(in, PromotionMargins{});
  EXPECT_FALSE(d.promote);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_TRUE(mentions(d, "estimated false alerts 5"));
  // A wider margin lets it through.
  PromotionMargins wide;
  wide.false_alerts = 6;
  EXPECT_TRUE(promotion_gate(in, wide).promote);
}

TEST(PromotionGate, OperatorConfirmationsTurnExtraAlertsIntoTrueOnes) {
  auto in = alike();
  in.candidate.alerts = 30;
  in.candidate.alerts_other_missed = 10;
  in.candidate.other_missed_confirmed = 9;
  in.candidate.feedback.confirmed = 9;
  EXPECT_EQ(in.candidate.estimated_false_alerts(), 1);
  EXPECT_TRUE(promotion_gate(in, PromotionMargins{}).promote);
  // Marked false, they count whether or not the other model raised them.
  in.candidate.feedback.marked_false = 4;
  EXPECT_EQ(in.candidate.estimated_false_alerts(), 5);
  EXPECT_FALSE(promotion_gate(in, PromotionMargins{}).promote);
}

TEST(PromotionGate, RefusesABlindCandidate) {
  // Trained on corrupted data, it raises nothing: no false alerts at all, but it misses every real one.
  auto in = alike();
  in.candidate.alerts = 0;
  in.active.alerts_other_missed = 20;
  in.agreement = 0.99;
  const auto d = promotion_gate(in, PromotionMargins{});
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(mentions(d, "missed 20 of the active model's 20 alerts"));
  // Unless operators said the active model's alerts were false.
  in.active.other_missed_marked_false = 20;
  in.active.feedback.marked_false = 20;
  EXPECT_TRUE(promotion_gate(in, PromotionMargins{}).promote);
}

TEST(PromotionGate, RefusesMoreUnfamiliarConditionsAndDisagreement) {
  auto in = alike();
  in.candidate.unfamiliar_events = 72'000;  // 10% of events
  in.agreement = 0.9;
  const auto d = promotion_gate(in, PromotionMargins{});
  EXPECT_FALSE(d.promote);
  EXPECT_EQ(d.reasons.size(), 2u);
  EXPECT_TRUE(mentions(d, "unfamiliar"));
  EXPECT_TRUE(mentions(d, "agree"));
}

TEST(PromotionGate, RefusesACandidateThatScoredNothing) {
  auto in = alike();
  in.candidate = ShadowSummary{};
  const auto d = promotion_gate(in, PromotionMargins{});
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(mentions(d, "scored 0 events"));
}

}  // namespace
}  // namespace fleettwin::ml
