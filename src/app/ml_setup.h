#pragma once

#include "config/config.h"
#include "ml/monitor.h"
#include "ml/promotion_gate.h"
#include "ml/training.h"
#include "stages/score/score_stage.h"
#include "stages/train/train_stage.h"

namespace fleettwin::app {

// The ml.* configuration keys of training turned into its settings (the score stage reads its own:
// stages::monitor_options); shared by `train`, `eval` and
// `up`, and the benchmarks.

ml::TrainOptions train_options(const config::Config& config);
/// The promotion gate's margins (ml.promotion_margin_*).
ml::PromotionMargins promotion_margins(const config::Config& config);
/// Trains ml.architecture on warm-up data and encodes the artifact: what `up`'s score stage runs once.
stages::WarmupTrainer warmup_trainer(const config::Config& config);
/// Trains ml.architecture on the trainer stage's window, with its lineage in the metadata: the trainer's
/// candidates.
stages::CandidateTrainer candidate_trainer(const config::Config& config);

}  // namespace fleettwin::app
