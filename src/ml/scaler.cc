#include "ml/scaler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ml/features.h"

namespace fleettwin::ml {

RobustScaler::RobustScaler(std::vector<float> center, std::vector<float> scale)
    : _center(std::move(center)), _scale(std::move(scale)) {
  if (_center.size() != _scale.size()) throw std::invalid_argument("scaler: center and scale differ in size");
  for (float s : _scale)
    if (!(s > 0) || !std::isfinite(s)) throw std::invalid_argument("scaler: scale must be positive");
}

double quantile(std::vector<float>& values, double q) {
  if (values.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(lo), values.end());
  const double a = values[lo];
  if (lo + 1 >= values.size()) return a;
  const double b = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(lo) + 1, values.end());
  return a + (pos - static_cast<double>(lo)) * (b - a);
}

RobustScaler RobustScaler::fit(const float* data, std::size_t rows, std::size_t cols) {
  if (rows == 0) throw std::invalid_argument("scaler: no rows to fit on");
  std::vector<float> center(cols), scale(cols), column;
  column.reserve(rows);
  for (std::size_t c = 0; c < cols; ++c) {
    column.clear();
    for (std::size_t r = 0; r < rows; ++r)
      if (defined(data[r * cols + c])) column.push_back(data[r * cols + c]);
    if (column.empty()) {  // never defined in training: the model can only ever see its centre
      center[c] = 0;
      scale[c] = 1;
      continue;
    }
    const double q1 = quantile(column, 0.25), q3 = quantile(column, 0.75), med = quantile(column, 0.5);
    const double p5 = quantile(column, 0.05), p95 = quantile(column, 0.95);
    // The wider of two normal-sigma estimates: the IQR alone is tiny for a signal that is mostly still
    // (accelerometers of parked cars) and would blow its driving values up a hundredfold.
    double s = std::max((q3 - q1) / 1.349, (p95 - p5) / 3.290);
    if (!(s > 1e-6)) {
      for (auto& x : column) x = std::abs(x - static_cast<float>(med));
      s = quantile(column, 0.5) * 1.4826;
    }
    if (!(s > 1e-6)) s = 1.0;
    center[c] = static_cast<float>(med);
    scale[c] = static_cast<float>(s);
  }
  return RobustScaler(std::move(center), std::move(scale));
}

void RobustScaler::transform(float* data, std::size_t rows) const {
  const std::size_t cols = _center.size();
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = data + r * cols;
    for (std::size_t c = 0; c < cols; ++c) row[c] = defined(row[c]) ? (row[c] - _center[c]) / _scale[c] : 0.f;
  }
}

}  // namespace fleettwin::ml
