// The CycleGAN generator loss terms on the CPU: weighted means of per-element terms, one pass over
// each tensor forward and one backward.
//
// A term is a GAN term on a logit map (lsgan: (x - t)^2; vanilla: BCE with logits against t) or an
// L1 pair |x - y|. Forward writes every term's weight * mean(value) and then their total; backward
// writes d/dx (and d/dy = -d/dx for pairs) scaled by weight / numel * (dloss[term] + dloss[total]).
//
// Tensors are walked in storage order (they are dense; the two tensors of a pair share strides),
// in fixed blocks whose partial sums are combined in block order: deterministic for any threading.
#include <ATen/Dispatch.h>

#include <cmath>

#include "cyclegan_loss.h"
#include "params.h"

namespace effgan {
namespace {

enum TermKind : int { kLsgan = 0, kVanilla = 1, kL1 = 2 };

// Terms over lanes V (a value of A, or vf8). The vanilla term needs libm's log1p and exp, which
// have no vector form here: it stays scalar (kVectorTerm).
template <int KIND, typename V, typename A>
EFFGAN_INLINE V term_value(V x, V y, A target) {
  if constexpr (KIND == kLsgan) {
    const V d = x - target;
    return d * d;
  } else if constexpr (KIND == kVanilla) {
    // max(x, 0) - x * t + log(1 + exp(-|x|)): no overflow for any logit.
    return (x > V(0) ? x : V(0)) - x * target + std::log1p(std::exp(-std::abs(x)));
  } else {
    return abs_lanes(x - y);
  }
}

template <int KIND, typename V, typename A>
EFFGAN_INLINE V term_grad(V x, V y, A target) {
  if constexpr (KIND == kLsgan) {
    return splat<V>(2) * (x - target);
  } else if constexpr (KIND == kVanilla) {
    const V e = std::exp(-std::abs(x));
    const V sig = x >= V(0) ? V(1) / (V(1) + e) : e / (V(1) + e);
    return sig - target;
  } else {
    const V d = x - y, zero = splat<V>(0), one = splat<V>(1);
    return d > zero ? one : (d < zero ? -one : zero);  // sign(0) = 0, as torch's L1 gradient
  }
}

template <typename T, typename A, int KIND>
constexpr bool kVectorTerm = kHasVec<T, A> && KIND != kVanilla;

// x (and for L1 terms y) at i, as lanes V.
template <int KIND, typename V, typename T>
EFFGAN_INLINE void load_pair(const T* x, const T* y, int64_t i, V& xv, V& yv) {
  xv = load<V>(x + i);
  if constexpr (KIND == kL1) {
    yv = load<V>(y + i);
  } else {
    yv = splat<V>(0);
  }
}

template <typename T, typename A, int KIND>
EFFGAN_INLINE double block_sum(const T* __restrict x, const T* __restrict y, int64_t len, A target) {
  double sum[1];
  lane_sums<1, T, A, kVectorTerm<T, A, KIND>>(
      len,
      [&](auto v, int64_t i, auto* t) {
        decltype(v) xv, yv;
        load_pair<KIND>(x, y, i, xv, yv);
        t[0] = term_value<KIND>(xv, yv, target);
      },
      sum);
  return sum[0];
}

template <typename T, typename A, int KIND>
double term_sum(const T* x, const T* y, int64_t numel, A target) {
  const int64_t nblk = ceil_div(numel, kBlock);
  std::vector<double> part(nblk);
  parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kBlock;
      part[b] = block_sum<T, A, KIND>(x + lo, y ? y + lo : nullptr, std::min(kBlock, numel - lo), target);
    }
  });
  double total = 0;
  for (double v : part) total += v;
  return total;
}

template <typename T, typename A, int KIND>
void term_grads(const T* x, const T* y, T* dx, T* dy, int64_t numel, A target, A scale) {
  parallel_for(0, ceil_div(numel, kBlock), 1, [&](int64_t b0, int64_t b1) {
    const int64_t lo = b0 * kBlock, hi = std::min(numel, b1 * kBlock);
    for_each_lanes<T, A, kVectorTerm<T, A, KIND>>(hi - lo, [&](auto v, int64_t i) {
      using V = decltype(v);
      V xv, yv;
      load_pair<KIND>(x, y, lo + i, xv, yv);
      const V g = term_grad<KIND>(xv, yv, target) * scale;
      if (dx) store(dx + lo + i, g);
      if (dy) store(dy + lo + i, -g);
    });
  });
}

template <typename F>
void dispatch_kind(int kind, F&& f) {
  switch (kind) {
    case kLsgan: f(std::integral_constant<int, kLsgan>{}); break;
    case kVanilla: f(std::integral_constant<int, kVanilla>{}); break;
    default: f(std::integral_constant<int, kL1>{}); break;
  }
}

void check_dense(const at::Tensor& t, const char* what, size_t i) {
  TORCH_CHECK_VALUE(t.defined(), what, "[", i, "] is undefined");
  check_cpu_float(t, what);
  TORCH_CHECK_VALUE(t.numel() > 0, what, "[", i, "] must not be empty");
  TORCH_CHECK_VALUE(t.is_non_overlapping_and_dense(), what, "[", i, "] must be dense (no gaps or overlaps)");
}

void check_finite_list(const std::vector<double>& v, const char* name) {
  for (double d : v) TORCH_CHECK_VALUE(std::isfinite(d), name, " must be finite, got ", d);
}

// One term, as the kernels see it.
struct Term {
  int kind;
  at::Tensor x, y;  // y undefined for GAN terms
  double target, weight;
};

std::vector<Term> make_terms(const std::vector<at::Tensor>& preds, const std::vector<double>& targets,
                             const std::vector<double>& pred_weights, const std::vector<at::Tensor>& xs,
                             const std::vector<at::Tensor>& ys, const std::vector<double>& l1_weights,
                             int64_t gan_mode) {
  TORCH_CHECK_VALUE(gan_mode == kLsgan || gan_mode == kVanilla, "gan_mode must be 0 (lsgan) or 1 (vanilla), got ",
                    gan_mode);
  TORCH_CHECK_VALUE(targets.size() == preds.size() && pred_weights.size() == preds.size(),
                    "preds, targets and pred_weights must have one entry per prediction");
  TORCH_CHECK_VALUE(xs.size() == ys.size() && l1_weights.size() == xs.size(),
                    "xs, ys and l1_weights must have one entry per L1 pair");
  TORCH_CHECK_VALUE(!preds.empty() || !xs.empty(), "there must be at least one loss term");
  check_finite_list(targets, "targets");
  check_finite_list(pred_weights, "pred_weights");
  check_finite_list(l1_weights, "l1_weights");
  std::vector<Term> terms;
  for (size_t i = 0; i < preds.size(); ++i) {
    check_dense(preds[i], "preds", i);
    terms.push_back({static_cast<int>(gan_mode), preds[i], at::Tensor(), targets[i], pred_weights[i]});
  }
  for (size_t i = 0; i < xs.size(); ++i) {
    check_dense(xs[i], "xs", i);
    check_like(ys[i], xs[i], "ys[i] (the partner of xs[i])");
    terms.push_back({kL1, xs[i], ys[i], 0.0, l1_weights[i]});
  }
  return terms;
}

at::ScalarType terms_acc(const std::vector<Term>& terms) {
  for (const auto& t : terms) {
    if (t.x.scalar_type() == at::kDouble) return at::kDouble;
  }
  return at::kFloat;
}

}  // namespace

void cyclegan_loss_fwd(const std::vector<at::Tensor>& preds, const std::vector<double>& targets,
                       const std::vector<double>& pred_weights, const std::vector<at::Tensor>& xs,
                       const std::vector<at::Tensor>& ys, const std::vector<double>& l1_weights, int64_t gan_mode,
                       const at::Tensor& out) {
  const std::vector<Term> terms = make_terms(preds, targets, pred_weights, xs, ys, l1_weights, gan_mode);
  const int64_t T = static_cast<int64_t>(terms.size());
  const at::ScalarType acc = terms_acc(terms);
  check_shape_dtype(out, {T + 1}, acc, "out");
  std::vector<double> losses(T);
  for (int64_t r = 0; r < T; ++r) {
    const Term& t = terms[r];
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.x.scalar_type(), "cyclegan_loss_fwd", [&] {
      using T_ = scalar_t;
      const T_* y = t.y.defined() ? t.y.const_data_ptr<T_>() : nullptr;
      dispatch_kind(t.kind, [&](auto tag) {
        constexpr int KIND = decltype(tag)::value;
        double sum;
        if (acc == at::kDouble) {
          sum = term_sum<T_, double, KIND>(t.x.const_data_ptr<T_>(), y, t.x.numel(), t.target);
        } else {
          sum = term_sum<T_, float, KIND>(t.x.const_data_ptr<T_>(), y, t.x.numel(), static_cast<float>(t.target));
        }
        losses[r] = sum * t.weight / static_cast<double>(t.x.numel());
      });
    });
  }
  AT_DISPATCH_FLOATING_TYPES(acc, "cyclegan_loss_out", [&] {
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    scalar_t total = 0;
    for (int64_t r = 0; r < T; ++r) {
      o[r] = static_cast<scalar_t>(losses[r]);
      total += o[r];
    }
    o[T] = total;
  });
}

void cyclegan_loss_bwd(const at::Tensor& dloss, const std::vector<at::Tensor>& preds,
                       const std::vector<double>& targets, const std::vector<double>& pred_weights,
                       const std::vector<at::Tensor>& xs, const std::vector<at::Tensor>& ys,
                       const std::vector<double>& l1_weights, int64_t gan_mode,
                       const std::vector<std::optional<at::Tensor>>& dxs,
                       const std::vector<std::optional<at::Tensor>>& dys) {
  const std::vector<Term> terms = make_terms(preds, targets, pred_weights, xs, ys, l1_weights, gan_mode);
  const int64_t T = static_cast<int64_t>(terms.size());
  TORCH_CHECK_VALUE(static_cast<int64_t>(dxs.size()) == T && static_cast<int64_t>(dys.size()) == T,
                    "dxs and dys must have one entry (a tensor or None) per term");
  check_cpu_float(dloss, "dloss");
  TORCH_CHECK_VALUE(dloss.dim() == 1 && dloss.size(0) == T + 1, "dloss must have shape (", T + 1, "), got ",
                    dloss.sizes());
  const at::Tensor g = dloss.to(at::kDouble).contiguous();
  const double* gp = g.const_data_ptr<double>();
  const at::ScalarType acc = terms_acc(terms);
  for (int64_t r = 0; r < T; ++r) {
    const Term& t = terms[r];
    const bool has_dx = dxs[r].has_value() && dxs[r]->defined();
    const bool has_dy = dys[r].has_value() && dys[r]->defined();
    if (has_dx) check_like(*dxs[r], t.x, "dxs[i]");
    if (has_dy) {
      TORCH_CHECK_VALUE(t.y.defined(), "dys[", r, "] given for a GAN term");
      check_like(*dys[r], t.y, "dys[i]");
    }
    if (!has_dx && !has_dy) continue;
    // The term enters the output twice: as itself and inside the total.
    const double scale = (gp[r] + gp[T]) * t.weight / static_cast<double>(t.x.numel());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.x.scalar_type(), "cyclegan_loss_bwd", [&] {
      using T_ = scalar_t;
      const T_* y = t.y.defined() ? t.y.const_data_ptr<T_>() : nullptr;
      T_* dx = has_dx ? dxs[r]->mutable_data_ptr<T_>() : nullptr;
      T_* dy = has_dy ? dys[r]->mutable_data_ptr<T_>() : nullptr;
      dispatch_kind(t.kind, [&](auto tag) {
        constexpr int KIND = decltype(tag)::value;
        if (acc == at::kDouble) {
          term_grads<T_, double, KIND>(t.x.const_data_ptr<T_>(), y, dx, dy, t.x.numel(), t.target, scale);
        } else {
          term_grads<T_, float, KIND>(t.x.const_data_ptr<T_>(), y, dx, dy, t.x.numel(),
                                      static_cast<float>(t.target), static_cast<float>(scale));
        }
      });
    });
  }
}

}  // namespace effgan
