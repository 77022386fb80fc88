// Tensor math: views, elementwise arithmetic, comparisons, reductions, linear algebra, indexing and
// the in-place variants optimizers use. Each function is one libtorch call.
#include <cmath>

#include "common.h"

namespace awty {

// A JS number as a Scalar: integer-valued numbers stay integral (like Python ints), others double.
static at::Scalar Sc(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && info[i].IsBoolean()) return at::Scalar(info[i].As<Napi::Boolean>().Value());
  double d = Num(info, i);
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}
static bool IsNum(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && (info[i].IsNumber() || info[i].IsBoolean());
}
static at::Scalar Alpha(const Napi::CallbackInfo& info, size_t i) {
  return (info.Length() > i && !info[i].IsUndefined()) ? Sc(info, i) : at::Scalar(static_cast<int64_t>(1));
}

// ---- views -----------------------------------------------------------------------------------
AWTY_OP(view) { return W(info.Env(), T(info, 0).view(IntList(info, 1))); }
AWTY_OP(reshape) { return W(info.Env(), T(info, 0).reshape(IntList(info, 1))); }
AWTY_OP(permute) { return W(info.Env(), T(info, 0).permute(IntList(info, 1))); }
AWTY_OP(transpose) { return W(info.Env(), T(info, 0).transpose(Int(info, 1), Int(info, 2))); }
AWTY_OP(flatten) { return W(info.Env(), T(info, 0).flatten(Int(info, 1), Int(info, 2))); }
AWTY_OP(squeeze) {
  auto d = OptInt(info, 1);
  return W(info.Env(), d ? T(info, 0).squeeze(*d) : T(info, 0).squeeze());
}
AWTY_OP(unsqueeze) { return W(info.Env(), T(info, 0).unsqueeze(Int(info, 1))); }
AWTY_OP(narrow) { return W(info.Env(), T(info, 0).narrow(Int(info, 1), Int(info, 2), Int(info, 3))); }
AWTY_OP(slice) {
  return W(info.Env(), T(info, 0).slice(Int(info, 1), OptInt(info, 2), OptInt(info, 3), OptInt(info, 4).value_or(1)));
}
AWTY_OP(select) { return W(info.Env(), T(info, 0).select(Int(info, 1), Int(info, 2))); }
AWTY_OP(expand) { return W(info.Env(), T(info, 0).expand(IntList(info, 1))); }
AWTY_OP(asStrided) {
  return W(info.Env(), T(info, 0).as_strided(IntList(info, 1), IntList(info, 2), OptInt(info, 3)));
}
AWTY_OP(flip) { return W(info.Env(), T(info, 0).flip(IntList(info, 1))); }
AWTY_OP(chunk) { return WList(info.Env(), T(info, 0).chunk(Int(info, 1), Int(info, 2))); }
AWTY_OP(split) { return WList(info.Env(), T(info, 0).split(Int(info, 1), Int(info, 2))); }
AWTY_OP(unbind) { return WList(info.Env(), T(info, 0).unbind(Int(info, 1))); }

// ---- elementwise -----------------------------------------------------------------------------
AWTY_OP(add) {
  return W(info.Env(), IsNum(info, 1) ? at::add(T(info, 0), Sc(info, 1), Alpha(info, 2)) : at::add(T(info, 0), T(info, 1), Alpha(info, 2)));
}
AWTY_OP(sub) {
  return W(info.Env(), IsNum(info, 1) ? at::sub(T(info, 0), Sc(info, 1), Alpha(info, 2)) : at::sub(T(info, 0), T(info, 1), Alpha(info, 2)));
}

#define AWTY_BINARY(name, fn)                                                                   \
  AWTY_OP(name) {                                                                               \
    return W(info.Env(), IsNum(info, 1) ? at::fn(T(info, 0), Sc(info, 1)) : at::fn(T(info, 0), T(info, 1))); \
  }
AWTY_BINARY(mul, mul)
AWTY_BINARY(div, div)
AWTY_BINARY(remainder, remainder)
AWTY_BINARY(eq, eq)
AWTY_BINARY(ne, ne)
AWTY_BINARY(lt, lt)
AWTY_BINARY(le, le)
AWTY_BINARY(gt, gt)
AWTY_BINARY(ge, ge)
AWTY_OP(pow) {
  return W(info.Env(), IsNum(info, 1) ? at::pow(T(info, 0), Sc(info, 1)) : at::pow(T(info, 0), T(info, 1)));
}
AWTY_OP(maximum) { return W(info.Env(), at::maximum(T(info, 0), T(info, 1))); }
AWTY_OP(minimum) { return W(info.Env(), at::minimum(T(info, 0), T(info, 1))); }
AWTY_OP(logicalAnd) { return W(info.Env(), at::logical_and(T(info, 0), T(info, 1))); }
AWTY_OP(logicalOr) { return W(info.Env(), at::logical_or(T(info, 0), T(info, 1))); }
AWTY_OP(lerp) { return W(info.Env(), at::lerp(T(info, 0), T(info, 1), Sc(info, 2))); }

#define AWTY_UNARY(name, fn) \
  AWTY_OP(name) { return W(info.Env(), at::fn(T(info, 0))); }
AWTY_UNARY(neg, neg)
AWTY_UNARY(exp, exp)
AWTY_UNARY(log, log)
AWTY_UNARY(log1p, log1p)
AWTY_UNARY(expm1, expm1)
AWTY_UNARY(sqrt, sqrt)
AWTY_UNARY(rsqrt, rsqrt)
AWTY_UNARY(abs, abs)
AWTY_UNARY(sigmoid, sigmoid)
AWTY_UNARY(tanh, tanh)
AWTY_UNARY(floor, floor)
AWTY_UNARY(ceil, ceil)
AWTY_UNARY(round, round)
AWTY_UNARY(sign, sign)
AWTY_UNARY(reciprocal, reciprocal)
AWTY_UNARY(sin, sin)
AWTY_UNARY(cos, cos)
AWTY_UNARY(square, square)
AWTY_UNARY(logicalNot, logical_not)
AWTY_UNARY(isnan, isnan)
AWTY_UNARY(isfinite, isfinite)

AWTY_OP(clamp) {
  c10::optional<at::Scalar> lo, hi;
  if (OptNum(info, 1)) lo = Sc(info, 1);
  if (OptNum(info, 2)) hi = Sc(info, 2);
  if (!lo && !hi) throw Napi::Error::New(info.Env(), "clamp: give at least one of min and max");
  return W(info.Env(), at::clamp(T(info, 0), lo ? c10::optional<at::Scalar>(*lo) : c10::nullopt, hi ? c10::optional<at::Scalar>(*hi) : c10::nullopt));
}
AWTY_OP(where) {
  at::Tensor& c = T(info, 0);
  if (IsNum(info, 1) && IsNum(info, 2)) return W(info.Env(), at::where(c, Sc(info, 1), Sc(info, 2)));
  if (IsNum(info, 1)) return W(info.Env(), at::where(c, Sc(info, 1), T(info, 2)));
  if (IsNum(info, 2)) return W(info.Env(), at::where(c, T(info, 1), Sc(info, 2)));
  return W(info.Env(), at::where(c, T(info, 1), T(info, 2)));
}
AWTY_OP(maskedFill) { return W(info.Env(), T(info, 0).masked_fill(T(info, 1), Sc(info, 2))); }

// ---- reductions ------------------------------------------------------------------------------
AWTY_OP(sum) {
  auto dims = OptIntList(info, 1);
  auto dt = OptDType(info, 3);
  if (!dims) return W(info.Env(), at::sum(T(info, 0), dt ? c10::optional<at::ScalarType>(*dt) : c10::nullopt));
  return W(info.Env(), at::sum(T(info, 0), *dims, Bool(info, 2), dt ? c10::optional<at::ScalarType>(*dt) : c10::nullopt));
}
AWTY_OP(mean) {
  auto dims = OptIntList(info, 1);
  if (!dims) return W(info.Env(), at::mean(T(info, 0)));
  return W(info.Env(), at::mean(T(info, 0), *dims, Bool(info, 2)));
}
AWTY_OP(prod) {
  auto d = OptInt(info, 1);
  return W(info.Env(), d ? at::prod(T(info, 0), *d, Bool(info, 2)) : at::prod(T(info, 0)));
}
AWTY_OP(maxAll) { return W(info.Env(), at::max(T(info, 0))); }
AWTY_OP(minAll) { return W(info.Env(), at::min(T(info, 0))); }
AWTY_OP(maxDim) {
  auto r = at::max(T(info, 0), Int(info, 1), Bool(info, 2));
  return WList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
AWTY_OP(minDim) {
  auto r = at::min(T(info, 0), Int(info, 1), Bool(info, 2));
  return WList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
AWTY_OP(argmax) { return W(info.Env(), at::argmax(T(info, 0), OptInt(info, 1), Bool(info, 2))); }
AWTY_OP(argmin) { return W(info.Env(), at::argmin(T(info, 0), OptInt(info, 1), Bool(info, 2))); }
AWTY_OP(std) {
  auto dims = OptIntList(info, 1);
  bool unbiased = info.Length() > 2 && !info[2].IsUndefined() ? Bool(info, 2) : true;
  if (!dims) return W(info.Env(), at::std(T(info, 0), unbiased));
  return W(info.Env(), at::std(T(info, 0), at::OptionalIntArrayRef(*dims), unbiased, Bool(info, 3)));
}
AWTY_OP(var) {
  auto dims = OptIntList(info, 1);
  bool unbiased = info.Length() > 2 && !info[2].IsUndefined() ? Bool(info, 2) : true;
  if (!dims) return W(info.Env(), at::var(T(info, 0), unbiased));
  return W(info.Env(), at::var(T(info, 0), at::OptionalIntArrayRef(*dims), unbiased, Bool(info, 3)));
}
AWTY_OP(norm) {
  auto dims = OptIntList(info, 2);
  at::Scalar p = OptNum(info, 1) ? Sc(info, 1) : at::Scalar(2);
  if (!dims) return W(info.Env(), at::norm(T(info, 0), p));
  return W(info.Env(), at::norm(T(info, 0), p, *dims, Bool(info, 3)));
}
AWTY_OP(all) { return W(info.Env(), at::all(T(info, 0))); }
AWTY_OP(any) { return W(info.Env(), at::any(T(info, 0))); }
AWTY_OP(cumsum) { return W(info.Env(), at::cumsum(T(info, 0), Int(info, 1))); }
AWTY_OP(logsumexp) { return W(info.Env(), at::logsumexp(T(info, 0), IntList(info, 1), Bool(info, 2))); }

// ---- linear algebra, indexing, joining -------------------------------------------------------
AWTY_OP(matmul) { return W(info.Env(), at::matmul(T(info, 0), T(info, 1))); }
AWTY_OP(mm) { return W(info.Env(), at::mm(T(info, 0), T(info, 1))); }
AWTY_OP(bmm) { return W(info.Env(), at::bmm(T(info, 0), T(info, 1))); }
AWTY_OP(outer) { return W(info.Env(), at::outer(T(info, 0), T(info, 1))); }
AWTY_OP(topk) {
  bool largest = info.Length() > 3 && !info[3].IsUndefined() ? Bool(info, 3) : true;
  bool sorted = info.Length() > 4 && !info[4].IsUndefined() ? Bool(info, 4) : true;
  auto r = at::topk(T(info, 0), Int(info, 1), OptInt(info, 2).value_or(-1), largest, sorted);
  return WList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
AWTY_OP(sort) {
  auto r = at::sort(T(info, 0), OptInt(info, 1).value_or(-1), Bool(info, 2));
  return WList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
AWTY_OP(cat) { return W(info.Env(), at::cat(TList(info, 0), OptInt(info, 1).value_or(0))); }
AWTY_OP(stack) { return W(info.Env(), at::stack(TList(info, 0), OptInt(info, 1).value_or(0))); }
AWTY_OP(indexSelect) { return W(info.Env(), at::index_select(T(info, 0), Int(info, 1), T(info, 2))); }
AWTY_OP(gather) { return W(info.Env(), at::gather(T(info, 0), Int(info, 1), T(info, 2))); }
AWTY_OP(scatter) {
  if (IsNum(info, 3)) return W(info.Env(), at::scatter(T(info, 0), Int(info, 1), T(info, 2), Sc(info, 3)));
  return W(info.Env(), at::scatter(T(info, 0), Int(info, 1), T(info, 2), T(info, 3)));
}
AWTY_OP(oneHot) { return W(info.Env(), at::one_hot(T(info, 0), OptInt(info, 1).value_or(-1))); }
AWTY_OP(allclose) {
  return Napi::Boolean::New(info.Env(), at::allclose(T(info, 0), T(info, 1), OptNum(info, 2).value_or(1e-5), OptNum(info, 3).value_or(1e-8)));
}
AWTY_OP(equal) { return Napi::Boolean::New(info.Env(), at::equal(T(info, 0), T(info, 1))); }

// ---- in place (return the same handle) -------------------------------------------------------
AWTY_OP(add_) {
  if (IsNum(info, 1)) T(info, 0).add_(Sc(info, 1), Alpha(info, 2));
  else T(info, 0).add_(T(info, 1), Alpha(info, 2));
  return info[0];
}
AWTY_OP(sub_) {
  if (IsNum(info, 1)) T(info, 0).sub_(Sc(info, 1), Alpha(info, 2));
  else T(info, 0).sub_(T(info, 1), Alpha(info, 2));
  return info[0];
}
AWTY_OP(mul_) {
  if (IsNum(info, 1)) T(info, 0).mul_(Sc(info, 1));
  else T(info, 0).mul_(T(info, 1));
  return info[0];
}
AWTY_OP(div_) {
  if (IsNum(info, 1)) T(info, 0).div_(Sc(info, 1));
  else T(info, 0).div_(T(info, 1));
  return info[0];
}
AWTY_OP(addcmul_) {
  T(info, 0).addcmul_(T(info, 1), T(info, 2), Alpha(info, 3));
  return info[0];
}
AWTY_OP(addcdiv_) {
  T(info, 0).addcdiv_(T(info, 1), T(info, 2), Alpha(info, 3));
  return info[0];
}
AWTY_OP(lerp_) {
  T(info, 0).lerp_(T(info, 1), Sc(info, 2));
  return info[0];
}
AWTY_OP(maximum_) {
  at::Tensor& t = T(info, 0);
  at::maximum_out(t, t, T(info, 1));
  return info[0];
}
AWTY_OP(zero_) {
  T(info, 0).zero_();
  return info[0];
}
AWTY_OP(fill_) {
  T(info, 0).fill_(Sc(info, 1));
  return info[0];
}
AWTY_OP(clamp_) {
  c10::optional<at::Scalar> lo, hi;
  if (OptNum(info, 1)) lo = Sc(info, 1);
  if (OptNum(info, 2)) hi = Sc(info, 2);
  T(info, 0).clamp_(lo, hi);
  return info[0];
}
AWTY_OP(sqrt_) {
  T(info, 0).sqrt_();
  return info[0];
}
AWTY_OP(neg_) {
  T(info, 0).neg_();
  return info[0];
}
AWTY_OP(uniform_) {
  T(info, 0).uniform_(Num(info, 1), Num(info, 2));
  return info[0];
}
AWTY_OP(normal_) {
  T(info, 0).normal_(Num(info, 1), Num(info, 2));
  return info[0];
}
AWTY_OP(bernoulli_) {
  T(info, 0).bernoulli_(Num(info, 1));
  return info[0];
}

}  // namespace awty
