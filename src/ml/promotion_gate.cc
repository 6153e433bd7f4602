#include "ml/promotion_gate.h"

#include <cstdio>

namespace fleettwin::ml {

double ShadowSummary::estimated_false_per_1000_car_hours() const {
  return car_hours > 0 ? 1000.0 * static_cast<double>(estimated_false_alerts()) / car_hours : 0;
}

double ShadowSummary::unfamiliar_share() const {
  return events > 0 ? static_cast<double>(unfamiliar_events) / static_cast<double>(events) : 0;
}

namespace {

template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

}  // namespace

PromotionDecision promotion_gate(const PromotionInput& in, const PromotionMargins& margins) {
  const ShadowSummary& a = in.active;
  const ShadowSummary& c = in.candidate;
  std::vector<std::string> passed, failed;
  auto check = [&](bool ok, std::string text) { (ok ? passed : failed).push_back(std::move(text)); };

  // A candidate that saw nothing proves nothing, however clean its figures look.
  check(c.events > 0,
        format("candidate scored %lld events in the shadow period", static_cast<long long>(c.events)));

  const double fa = c.estimated_false_per_1000_car_hours(),
               fa_active = a.estimated_false_per_1000_car_hours();
  check(
      fa <= fa_active + margins.false_alerts,
      format("estimated false alerts %.3g per 1,000 car-hours against the active model's %.3g (margin %.3g)",
             fa, fa_active, margins.false_alerts));

  // The active model's alerts the candidate missed count against it unless operators called them false:
  // without labels a disagreement may be a miss, and only the margin tells a cleaner model from a blind one.
  const int64_t missed = a.alerts_other_missed - a.other_missed_marked_false;
  const double missed_share = a.alerts > 0 ? static_cast<double>(missed) / static_cast<double>(a.alerts) : 0;
  check(missed_share <= margins.missed_alerts,
        format("missed %lld of the active model's %lld alerts (share %.3g, margin %.3g)",
               static_cast<long long>(missed), static_cast<long long>(a.alerts), missed_share,
               margins.missed_alerts));

  const double u = c.unfamiliar_share(), u_active = a.unfamiliar_share();
  check(u <= u_active + margins.unfamiliar,
        format("unfamiliar conditions on %.3g of events against the active model's %.3g (margin %.3g)", u,
               u_active, margins.unfamiliar));

  check(in.agreement >= 1 - margins.disagreement,
        format("verdicts agree on %.4g of events (at least %.4g)", in.agreement, 1 - margins.disagreement));

  PromotionDecision d;
  d.promote = failed.empty();
  d.reasons = d.promote ? std::move(passed) : std::move(failed);
  return d;
}

}  // namespace fleettwin::ml
