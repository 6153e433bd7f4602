#include "ml/promotion_gate.h"

#include <algorithm>
#include <cstdio>

namespace fleettwin::ml {

int64_t ShadowSummary::estimated_false_alerts() const {
  const int64_t labelled = other_missed_confirmed + other_missed_marked_false;
  return feedback.marked_false + std::max<int64_t>(0, other_missed_cleared - labelled);
}

int64_t ShadowSummary::estimated_true_disputed() const {
  // Labelled ones were taken from the cleared alerts first; what is left of them comes off the lasting ones.
  const int64_t labelled = other_missed_confirmed + other_missed_marked_false;
  const int64_t left = std::max<int64_t>(0, labelled - other_missed_cleared);
  return other_missed_confirmed + std::max<int64_t>(0, other_missed_sustained - left);
}

void count_disputed(ShadowSummary& s, int64_t raised, int64_t cleared, int64_t end, int64_t sustained_ms) {
  ++s.alerts_other_missed;
  if (cleared >= 0 && cleared - raised < sustained_ms)
    ++s.other_missed_cleared;
  else if ((cleared >= 0 ? cleared : end) - raised >= sustained_ms)
    ++s.other_missed_sustained;
}

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

  // The active model's alerts the candidate missed count against it only when they look real (they lasted,
  // or operators confirmed them): counting its false ones too would refuse exactly the candidate that no
  // longer raises them.
  const int64_t missed = a.estimated_true_disputed();
  const int64_t true_active = a.alerts - a.estimated_false_alerts();
  const double missed_share =
      true_active > 0 ? static_cast<double>(missed) / static_cast<double>(true_active) : 0;
  check(missed_share <= margins.missed_alerts,
        format("missed %lld of the active model's %lld alerts estimated true (share %.3g, margin %.3g)",
               static_cast<long long>(missed), static_cast<long long>(true_active), missed_share,
               margins.missed_alerts));

  // Lasting alerts on cars the active model saw healthy are new failures found, up to a point: a model
  // trained on failing cars alarms for good on the healthy ones.
  const int64_t found = c.estimated_true_disputed();
  const double found_limit = margins.new_alerts * static_cast<double>(std::max<int64_t>(a.alerts, 1));
  check(static_cast<double>(found) <= found_limit,
        format("%lld lasting alerts on cars the active model had none on, against its %lld alerts (at most "
               "%.3g)",
               static_cast<long long>(found), static_cast<long long>(a.alerts), found_limit));

  const double u = c.unfamiliar_share(), u_active = a.unfamiliar_share();
  check(u <= u_active + margins.unfamiliar,
        format("unfamiliar conditions on %.3g of events against the active model's %.3g (margin %.3g)", u,
               u_active, margins.unfamiliar));

  check(
      in.agreement >= 1 - margins.disagreement,
      format("alert states agree on %.4g of events (at least %.4g)", in.agreement, 1 - margins.disagreement));

  PromotionDecision d;
  d.promote = failed.empty();
  d.reasons = d.promote ? std::move(passed) : std::move(failed);
  return d;
}

}  // namespace fleettwin::ml
