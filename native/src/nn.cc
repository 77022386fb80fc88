// Functional neural-network ops (torch.nn.functional): one libtorch call each.
#include "common.h"

namespace awty {

static int64_t Reduction(const std::string& r) {
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw std::invalid_argument("reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

// conv2d(input, weight, bias?, stride[2], padding[2], dilation[2], groups)
AWTY_OP(conv2d) {
  return W(info.Env(), at::conv2d(T(info, 0), T(info, 1), OptT(info, 2), IntList(info, 3), IntList(info, 4), IntList(info, 5), Int(info, 6)));
}
// batchNorm(input, weight?, bias?, runningMean?, runningVar?, training, momentum, eps)
AWTY_OP(batchNorm) {
  return W(info.Env(), at::batch_norm(T(info, 0), OptT(info, 1), OptT(info, 2), OptT(info, 3), OptT(info, 4), Bool(info, 5), Num(info, 6), Num(info, 7), true));
}
AWTY_OP(layerNorm) {
  return W(info.Env(), at::layer_norm(T(info, 0), IntList(info, 1), OptT(info, 2), OptT(info, 3), Num(info, 4)));
}
AWTY_OP(relu) { return W(info.Env(), at::relu(T(info, 0))); }
AWTY_OP(relu_) {
  at::relu_(T(info, 0));
  return info[0];
}
AWTY_OP(gelu) { return W(info.Env(), at::gelu(T(info, 0))); }
AWTY_OP(silu) { return W(info.Env(), at::silu(T(info, 0))); }
AWTY_OP(leakyRelu) { return W(info.Env(), at::leaky_relu(T(info, 0), Num(info, 1))); }
// maxPool2d(input, kernel[2], stride[2], padding[2], dilation[2], ceilMode)
AWTY_OP(maxPool2d) {
  return W(info.Env(), at::max_pool2d(T(info, 0), IntList(info, 1), IntList(info, 2), IntList(info, 3), IntList(info, 4), Bool(info, 5)));
}
// avgPool2d(input, kernel[2], stride[2], padding[2], ceilMode, countIncludePad)
AWTY_OP(avgPool2d) {
  return W(info.Env(), at::avg_pool2d(T(info, 0), IntList(info, 1), IntList(info, 2), IntList(info, 3), Bool(info, 4), Bool(info, 5)));
}
AWTY_OP(adaptiveAvgPool2d) { return W(info.Env(), at::adaptive_avg_pool2d(T(info, 0), IntList(info, 1))); }
AWTY_OP(linear) { return W(info.Env(), at::linear(T(info, 0), T(info, 1), OptT(info, 2))); }
AWTY_OP(dropout) { return W(info.Env(), at::dropout(T(info, 0), Num(info, 1), Bool(info, 2))); }
AWTY_OP(logSoftmax) { return W(info.Env(), at::log_softmax(T(info, 0), Int(info, 1))); }
AWTY_OP(softmax) { return W(info.Env(), at::softmax(T(info, 0), Int(info, 1))); }
// crossEntropy(input, target, weight?, reduction, ignoreIndex, labelSmoothing)
AWTY_OP(crossEntropy) {
  return W(info.Env(), at::cross_entropy_loss(T(info, 0), T(info, 1), OptT(info, 2), Reduction(Str(info, 3)), Int(info, 4), Num(info, 5)));
}
AWTY_OP(nllLoss) {
  return W(info.Env(), at::nll_loss(T(info, 0), T(info, 1), OptT(info, 2), Reduction(Str(info, 3)), Int(info, 4)));
}
AWTY_OP(mseLoss) { return W(info.Env(), at::mse_loss(T(info, 0), T(info, 1), Reduction(Str(info, 2)))); }
AWTY_OP(binaryCrossEntropyWithLogits) {
  return W(info.Env(), at::binary_cross_entropy_with_logits(T(info, 0), T(info, 1), OptT(info, 2), c10::nullopt, Reduction(Str(info, 3))));
}
// interpolate(input, size[2], mode, alignCorners, antialias)
AWTY_OP(interpolate) {
  at::Tensor& x = T(info, 0);
  auto size = IntList(info, 1);
  std::string mode = Str(info, 2);
  bool align = Bool(info, 3);
  bool aa = Bool(info, 4);
  if (x.dim() != 4) throw std::invalid_argument("interpolate expects a 4-d NCHW input");
  if (mode == "bilinear")
    return W(info.Env(), aa ? at::_upsample_bilinear2d_aa(x, size, align, c10::nullopt, c10::nullopt) : at::upsample_bilinear2d(x, size, align, c10::nullopt, c10::nullopt));
  if (mode == "bicubic")
    return W(info.Env(), aa ? at::_upsample_bicubic2d_aa(x, size, align, c10::nullopt, c10::nullopt) : at::upsample_bicubic2d(x, size, align, c10::nullopt, c10::nullopt));
  if (mode == "nearest") return W(info.Env(), at::upsample_nearest2d(x, size, c10::nullopt, c10::nullopt));
  throw std::invalid_argument("interpolate: mode must be 'bilinear', 'bicubic' or 'nearest', got '" + mode + "'");
}
AWTY_OP(pad) {
  std::string mode = info.Length() > 2 && info[2].IsString() ? Str(info, 2) : "constant";
  return W(info.Env(), at::pad(T(info, 0), IntList(info, 1), mode, OptNum(info, 3)));
}

}  // namespace awty
