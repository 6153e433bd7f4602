#pragma once

#include <cstddef>
#include <vector>

namespace fleettwin::ml {

/// Centres each column on its median and divides by its spread: the larger of interquartile range / 1.349
/// and (95th - 5th percentile) / 3.290, both the standard deviation for normal data. Medians and quantiles
/// ignore the few failing cars a training window may hold, where mean and standard deviation would follow
/// them. Fitted once, then read-only; any thread.
class RobustScaler {
 public:
  RobustScaler() = default;
  RobustScaler(std::vector<float> center, std::vector<float> scale);
  /// Fits on `rows` x `cols` row-major data. A column without spread (a constant, or an integer signal that
  /// rarely moves) gets its median absolute deviation, else 1, so it neither divides by zero nor blows up.
  static RobustScaler fit(const float* data, std::size_t rows, std::size_t cols);
  /// In place, `rows` x cols() row-major.
  void transform(float* data, std::size_t rows) const;
  std::size_t cols() const { return _center.size(); }
  const std::vector<float>& center() const { return _center; }
  const std::vector<float>& scale() const { return _scale; }

 private:
  std::vector<float> _center;
  std::vector<float> _scale;
};

/// The `q` quantile (0..1, linear interpolation) of `values`, which it reorders. 0 for no values.
double quantile(std::vector<float>& values, double q);

}  // namespace fleettwin::ml
