#include "ml/promotion_gate.h"

#include <algorithm>
#include <cstdio>

namespace fleettwin::ml {

int64_t ShadowSummary::estimated_false_alerts() const {
  return feedback.marked_false + alerts_other_missed - other_missed_confirmed - other_missed_marked_false;
}

void count_disputed(ShadowSummary& s, int64_t raised, int64_t cleared, int64_t end, int64_t sustained_ms,
                    const std::string& signal) {
  ++s.alerts_other_missed;
  ++s.disputed_by_signal[signal];
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

/// The first signal on which the candidate raised more than `slack` disputed alerts beyond the active
/// model's, with both counts; empty when none did.
std::string worst_signal(const ShadowSummary& a, const ShadowSummary& c, int64_t slack) {
  std::string worst;
  int64_t excess = slack;
  for (const auto& [signal, n] : c.disputed_by_signal) {
    const auto it = a.disputed_by_signal.find(signal);
    const int64_t theirs = it == a.disputed_by_signal.end() ? 0 : it->second;
    if (n - theirs <= excess) continue;
    excess = n - theirs;
    worst = format("%lld disputed alerts on %s against the active model's %lld", static_cast<long long>(n),
                   signal.empty() ? "no signal" : signal.c_str(), static_cast<long long>(theirs));
  }
  return worst;
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
  // Over the same cars and hours the rate's margin only ever lets through a candidate with more false
  // alerts, and on `eval --lifecycle` seeds 11 and 17 such candidates (3 against 1, 5 against 3) served
  // the following hours with more (docs/benchmarks.md): in count, no more than the active model's.
  check(c.estimated_false_alerts() <= a.estimated_false_alerts(),
        format("estimated false alerts %lld against the active model's %lld (no more)",
               static_cast<long long>(c.estimated_false_alerts()),
               static_cast<long long>(a.estimated_false_alerts())));
  // A candidate that trades the active model's false alerts on one input for its own on another is
  // refused: the new input's trouble grows with the fleet's state (charge drains over the day). Operators'
  // labels, when the candidate's disputed alerts have any, decide instead.
  if (margins.signal_false_alerts >= 0 && c.other_missed_confirmed == 0 && c.other_missed_marked_false == 0) {
    const std::string worst = worst_signal(a, c, margins.signal_false_alerts);
    check(worst.empty(), worst.empty() ? format("disputed alerts by signal within %lld of the active model's",
                                                static_cast<long long>(margins.signal_false_alerts))
                                       : worst + format(" (margin %lld)",
                                                        static_cast<long long>(margins.signal_false_alerts)));
  }

  // Without labels each side's disputed alerts are either its false alerts or the other's misses, and the
  // false-alerts check already charges the candidate for its own. What it must not do is drop many more of
  // the active model's alerts than it raises alone: net of those, the share it missed is bounded. A blind
  // candidate misses all; a cleaner one only the active model's false alerts beyond its own disputed ones
  // (the first gate counted every disputed alert of the active model as missed, and so refused exactly the
  // candidates that no longer raised its false alerts). Operators' "false" labels take alerts out of it.
  const int64_t missed = a.alerts_other_missed - a.other_missed_marked_false;
  const int64_t alone = c.alerts_other_missed - c.other_missed_marked_false;
  const int64_t net = std::max<int64_t>(0, missed - alone);
  const double missed_share = a.alerts > 0 ? static_cast<double>(net) / static_cast<double>(a.alerts) : 0;
  check(
      missed_share <= margins.missed_alerts,
      format(
          "missed %lld of the active model's %lld alerts, %lld net of the %lld it raised alone (share %.3g, "
          "margin %.3g)",
          static_cast<long long>(missed), static_cast<long long>(a.alerts), static_cast<long long>(net),
          static_cast<long long>(alone), missed_share, margins.missed_alerts));

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
