#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fleettwin::ml {

enum class Activation : uint8_t { kIdentity, kTanh, kRelu };
std::string_view to_string(Activation a);
/// Inverse of to_string; throws std::invalid_argument for an unknown name.
Activation activation_from_string(std::string_view name);

/// One fully connected layer: y = act(x W + b), W stored input-major ([in][out]) so the inner loop of the
/// batch product runs over contiguous outputs and the compiler vectorises it.
struct DenseLayer {
  std::size_t in = 0, out = 0;
  std::vector<float> weight;  ///< in * out, weight[i * out + o]
  std::vector<float> bias;    ///< out
  Activation activation = Activation::kIdentity;
};

/// A small multilayer perceptron evaluated with plain loops on weights copied out of the trained libtorch
/// module. Why not libtorch at inference: on a model of this size (24-32-12-32-24; bench/ml_bench.cc,
/// docs/benchmarks.md) these loops reconstruct about 2.3 M rows/s per core at any batch
/// size, libtorch 1.13 about 0.8 M/s on large batches and 0.5 M/s on batches of 16 (dispatch and tensor
/// allocation per layer); and the score stage stays free of libtorch's headers, which cost about a minute of
/// compile time per translation unit. Same arithmetic (float, same layer order); tanh via fast_tanh.
/// Immutable after construction; forward() is const and thread-safe given separate buffers.
class Mlp {
 public:
  Mlp() = default;
  explicit Mlp(std::vector<DenseLayer> layers);
  const std::vector<DenseLayer>& layers() const { return _layers; }
  std::size_t inputs() const { return _layers.empty() ? 0 : _layers.front().in; }
  std::size_t outputs() const { return _layers.empty() ? 0 : _layers.back().out; }
  std::size_t widest() const { return _widest; }
  /// Forward pass of `rows` rows (row-major `rows` x inputs()) into `out` (rows x outputs()). `scratch`
  /// is resized as needed and may be reused between calls.
  void forward(const float* in, std::size_t rows, float* out, std::vector<float>& scratch) const;

 private:
  std::vector<DenseLayer> _layers;
  std::size_t _widest = 0;
};

/// tanh to within a few float ulps using only multiply, add and divide, so the layer loop vectorises
/// (std::tanh is a libm call per element). Same rational approximation as Eigen's float tanh.
float fast_tanh(float x);

}  // namespace fleettwin::ml
