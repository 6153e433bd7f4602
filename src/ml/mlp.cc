#include "ml/mlp.h"

#include <algorithm>
#include <stdexcept>

#include "core/enum_names.h"

namespace fleettwin::ml {

constexpr core::EnumName<Activation> kActivationNames[] = {
    {Activation::kIdentity, "identity"}, {Activation::kTanh, "tanh"}, {Activation::kRelu, "relu"}};

std::string_view to_string(Activation a) { return core::name_of(kActivationNames, a, "identity"); }

Activation activation_from_string(std::string_view name) {
  if (auto a = core::parse(kActivationNames, name)) return *a;
  throw std::invalid_argument("unknown activation \"" + std::string(name) + "\"");
}

Mlp::Mlp(std::vector<DenseLayer> layers) : _layers(std::move(layers)) {
  for (std::size_t l = 0; l < _layers.size(); ++l) {
    const auto& layer = _layers[l];
    if (layer.weight.size() != layer.in * layer.out || layer.bias.size() != layer.out)
      throw std::invalid_argument("mlp: layer " + std::to_string(l) + " has weights of the wrong size");
    if (l > 0 && _layers[l - 1].out != layer.in)
      throw std::invalid_argument("mlp: layer " + std::to_string(l) + " does not fit the previous one");
    _widest = std::max({_widest, layer.in, layer.out});
  }
}

inline float fast_tanh_inline(float x) {
  constexpr float kClamp = 7.90531110763549805f;
  x = std::clamp(x, -kClamp, kClamp);
  const float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}

float fast_tanh(float x) { return fast_tanh_inline(x); }

namespace {

// Cloned for AVX2+FMA and plain x86-64 (the loader picks one at startup), so one portable binary still
// gets 8-wide multiply-adds where the CPU has them.
__attribute__((target_clones("arch=x86-64-v3", "default"))) void dense(const DenseLayer& layer,
                                                                       const float* __restrict in,
                                                                       std::size_t rows,
                                                                       float* __restrict out) {
  const std::size_t n_in = layer.in, n_out = layer.out;
  const float* __restrict w = layer.weight.data();
  const float* __restrict b = layer.bias.data();
  for (std::size_t r = 0; r < rows; ++r) {
    float* __restrict y = out + r * n_out;
    const float* __restrict x = in + r * n_in;
    for (std::size_t o = 0; o < n_out; ++o) y[o] = b[o];
    for (std::size_t i = 0; i < n_in; ++i) {
      const float xi = x[i];
      const float* __restrict wi = w + i * n_out;
      for (std::size_t o = 0; o < n_out; ++o) y[o] += xi * wi[o];
    }
    switch (layer.activation) {
      case Activation::kTanh:
        for (std::size_t o = 0; o < n_out; ++o) y[o] = fast_tanh_inline(y[o]);
        break;
      case Activation::kRelu:
        for (std::size_t o = 0; o < n_out; ++o) y[o] = y[o] > 0 ? y[o] : 0.0f;
        break;
      case Activation::kIdentity:
        break;
    }
  }
}

}  // namespace

void Mlp::forward(const float* in, std::size_t rows, float* out, std::vector<float>& scratch) const {
  if (_layers.empty()) throw std::logic_error("mlp: no layers");
  if (_layers.size() == 1) return dense(_layers[0], in, rows, out);
  scratch.resize(2 * rows * _widest);
  float* a = scratch.data();
  float* b = a + rows * _widest;
  const float* x = in;
  for (std::size_t l = 0; l + 1 < _layers.size(); ++l) {
    dense(_layers[l], x, rows, a);
    x = a;
    std::swap(a, b);
  }
  dense(_layers.back(), x, rows, out);
}

}  // namespace fleettwin::ml
