// The CycleGAN generator loss terms on the CPU: weighted means of per-element terms.
//
// A term is a GAN term on a logit map (lsgan: (x - t)^2; vanilla: BCE with logits against t) or an
// L1 pair |x - y|. Forward writes every term's weight * mean(value) and then their total; backward
// writes d/dx (and d/dy = -d/dx for pairs) scaled by weight / numel * (dloss[term] + dloss[total]).
//
// Bytes: the forward reads each image once (pairs that share their second tensor read it once for
// all of them) and, when a backward will follow, keeps each pair's signs of x - y at two bits per
// element (signs.h). The L1 gradient is the sign times a scale, so the backward reads those bits
// instead of the images: for the CycleGAN objective that is 6 image reads forward and 4 gradient
// writes backward (plus 1/4 image of signs), where recomputing from the inputs would be 6 + 10.
//
// Tensors are walked in storage order (they are dense; the two tensors of a pair share strides),
// in fixed blocks whose partial sums are combined in block order: deterministic for any threading.
#include <ATen/Dispatch.h>

#include <cmath>

#include "cyclegan_loss.h"
#include "params.h"
#include "signs.h"

namespace effgan {
namespace {

enum TermKind : int { kLsgan = 0, kVanilla = 1, kL1 = 2 };

// ---- GAN terms on logit maps (small: a PatchGAN map is ~1/100 of an image) ----

// Values over lanes V (a value of A, or vf8). The vanilla term needs libm's log1p and exp, which
// have no vector form here: it stays scalar (kVectorTerm).
template <int KIND, typename V, typename A>
EFFGAN_INLINE V gan_value(V x, A target) {
  if constexpr (KIND == kLsgan) {
    const V d = x - target;
    return d * d;
  } else {
    // max(x, 0) - x * t + log(1 + exp(-|x|)): no overflow for any logit.
    return (x > V(0) ? x : V(0)) - x * target + std::log1p(std::exp(-std::abs(x)));
  }
}

template <int KIND, typename V, typename A>
EFFGAN_INLINE V gan_grad(V x, A target) {
  if constexpr (KIND == kLsgan) {
    return splat<V>(2) * (x - target);
  } else {
    const V e = std::exp(-std::abs(x));
    const V sig = x >= V(0) ? V(1) / (V(1) + e) : e / (V(1) + e);
    return sig - target;
  }
}

template <typename T, typename A, int KIND>
constexpr bool kVectorTerm = kHasVec<T, A> && KIND == kLsgan;

template <typename T, typename A, int KIND>
double gan_sum(const T* x, int64_t numel, A target) {
  const int64_t nblk = ceil_div(numel, kBlock);
  std::vector<double> part(nblk);
  parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kBlock;
      double s[1];
      lane_sums<1, T, A, kVectorTerm<T, A, KIND>>(
          std::min(kBlock, numel - lo),
          [&](auto v, int64_t i, auto* t) { t[0] = gan_value<KIND>(load<decltype(v)>(x + lo + i), target); }, s);
      part[b] = s[0];
    }
  });
  double total = 0;
  for (double v : part) total += v;
  return total;
}

template <typename T, typename A, int KIND>
void gan_grads(const T* x, T* dx, int64_t numel, A target, A scale) {
  parallel_for(0, ceil_div(numel, kBlock), 1, [&](int64_t b0, int64_t b1) {
    const int64_t lo = b0 * kBlock, hi = std::min(numel, b1 * kBlock);
    for_each_lanes<T, A, kVectorTerm<T, A, KIND>>(hi - lo, [&](auto v, int64_t i) {
      store(dx + lo + i, gan_grad<KIND>(load<decltype(v)>(x + lo + i), target) * scale);
    });
  });
}

template <typename F>
void dispatch_gan_mode(int gan_mode, F&& f) {
  if (gan_mode == kLsgan) {
    f(std::integral_constant<int, kLsgan>{});
  } else {
    f(std::integral_constant<int, kVanilla>{});
  }
}

// ---- L1 pairs ----

// Up to kMaxGroup pairs that share their second tensor y are summed in one pass over y. Each
// pair's sum is formed exactly as it would be alone (same blocks, same lanes), so grouping never
// changes a result. signs[k] is null when no backward will follow.
constexpr int kMaxGroup = 2;

template <typename T, typename A, int K>
void l1_group_sums(const T* const* xs, const T* y, uint8_t* const* signs, int64_t numel, double* sums) {
  const int64_t nblk = ceil_div(numel, kBlock);
  std::vector<double> part(nblk * K);
  parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kBlock;  // a multiple of 8: every sign group starts in its block
      double s[K];
      lane_sums<K, T, A>(
          std::min(kBlock, numel - lo),
          [&](auto v, int64_t i, auto* t) {
            using V = decltype(v);
            const V yv = load<V>(y + lo + i);
            for (int k = 0; k < K; ++k) {
              const V d = load<V>(xs[k] + lo + i) - yv;
              t[k] = abs_lanes(d);
              if (signs[k]) put_signs(signs[k], lo + i, d);
            }
          },
          s);
      for (int k = 0; k < K; ++k) part[b * K + k] = s[k];
    }
  });
  for (int k = 0; k < K; ++k) {
    double total = 0;
    for (int64_t b = 0; b < nblk; ++b) total += part[b * K + k];
    sums[k] = total;
  }
}

// d|x - y|/dx * scale from the forward's signs (sign(0) = 0, as torch's L1 gradient); dy = -dx.
template <typename T, typename A>
void l1_grads(const uint8_t* signs, T* dx, T* dy, int64_t numel, A scale) {
  parallel_for(0, ceil_div(numel, kBlock), 1, [&](int64_t b0, int64_t b1) {
    const int64_t lo = b0 * kBlock, hi = std::min(numel, b1 * kBlock);
    for_each_lanes<T, A>(hi - lo, [&](auto v, int64_t i) {
      using V = decltype(v);
      const V g = signed_scale<V>(signs, lo + i, splat<V>(scale));
      if (dx) store(dx + lo + i, g);
      if (dy) store(dy + lo + i, -g);
    });
  });
}

// ---- argument checks ----

void check_dense(const at::Tensor& t, const char* what, size_t i) {
  TORCH_CHECK_VALUE(t.defined(), what, "[", i, "] is undefined");
  check_cpu_float(t, what);
  TORCH_CHECK_VALUE(t.numel() > 0, what, "[", i, "] must not be empty");
  TORCH_CHECK_VALUE(t.is_non_overlapping_and_dense(), what, "[", i, "] must be dense (no gaps or overlaps)");
}

void check_finite_list(const std::vector<double>& v, const char* name) {
  for (double d : v) TORCH_CHECK_VALUE(std::isfinite(d), name, " must be finite, got ", d);
}

void check_signs(const at::Tensor& s, const at::Tensor& x, size_t i) {
  TORCH_CHECK_VALUE(s.defined() && s.device().is_cpu() && s.scalar_type() == at::kByte && s.dim() == 1 &&
                        s.is_contiguous(),
                    "signs[", i, "] must be a contiguous 1-D uint8 CPU tensor");
  TORCH_CHECK_VALUE(s.size(0) == sign_bytes(x.numel()), "signs[", i, "] must have ", sign_bytes(x.numel()),
                    " bytes for ", x.numel(), " values, got ", s.size(0));
}

void check_terms(const std::vector<at::Tensor>& preds, const std::vector<double>& targets,
                 const std::vector<double>& pred_weights, const std::vector<at::Tensor>& xs,
                 const std::vector<double>& l1_weights, int64_t gan_mode) {
  TORCH_CHECK_VALUE(gan_mode == kLsgan || gan_mode == kVanilla, "gan_mode must be 0 (lsgan) or 1 (vanilla), got ",
                    gan_mode);
  TORCH_CHECK_VALUE(targets.size() == preds.size() && pred_weights.size() == preds.size(),
                    "preds, targets and pred_weights must have one entry per prediction");
  TORCH_CHECK_VALUE(l1_weights.size() == xs.size(), "xs and l1_weights must have one entry per L1 pair");
  TORCH_CHECK_VALUE(!preds.empty() || !xs.empty(), "there must be at least one loss term");
  check_finite_list(targets, "targets");
  check_finite_list(pred_weights, "pred_weights");
  check_finite_list(l1_weights, "l1_weights");
  for (size_t i = 0; i < preds.size(); ++i) check_dense(preds[i], "preds", i);
  for (size_t i = 0; i < xs.size(); ++i) check_dense(xs[i], "xs", i);
}

at::ScalarType terms_acc(const std::vector<at::Tensor>& preds, const std::vector<at::Tensor>& xs) {
  for (const auto* list : {&preds, &xs}) {
    for (const auto& t : *list) {
      if (t.scalar_type() == at::kDouble) return at::kDouble;
    }
  }
  return at::kFloat;
}

bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  return a.const_data_ptr() == b.const_data_ptr() && a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         a.strides() == b.strides();
}

// Pairs grouped by their second tensor (the same storage, read once), at most kMaxGroup per group,
// in order of first appearance.
std::vector<std::vector<size_t>> l1_groups(const std::vector<at::Tensor>& ys) {
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < ys.size(); ++i) {
    bool placed = false;
    for (auto& g : groups) {
      if (static_cast<int>(g.size()) < kMaxGroup && same_tensor(ys[g[0]], ys[i])) {
        g.push_back(i);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({i});
  }
  return groups;
}

template <typename F>
void dispatch_acc(at::ScalarType acc, F&& f) {
  if (acc == at::kDouble) {
    f(double{});
  } else {
    f(float{});
  }
}

}  // namespace

void cyclegan_loss_fwd(const std::vector<at::Tensor>& preds, const std::vector<double>& targets,
                       const std::vector<double>& pred_weights, const std::vector<at::Tensor>& xs,
                       const std::vector<at::Tensor>& ys, const std::vector<double>& l1_weights, int64_t gan_mode,
                       const at::Tensor& out, const std::vector<at::Tensor>& signs) {
  check_terms(preds, targets, pred_weights, xs, l1_weights, gan_mode);
  TORCH_CHECK_VALUE(ys.size() == xs.size(), "xs and ys must have one entry per L1 pair");
  for (size_t i = 0; i < xs.size(); ++i) check_like(ys[i], xs[i], "ys[i] (the partner of xs[i])");
  TORCH_CHECK_VALUE(signs.empty() || signs.size() == xs.size(),
                    "signs must be empty (no backward) or have one entry per L1 pair");
  for (size_t i = 0; i < signs.size(); ++i) check_signs(signs[i], xs[i], i);
  const int64_t P = static_cast<int64_t>(preds.size()), T = P + static_cast<int64_t>(xs.size());
  const at::ScalarType acc = terms_acc(preds, xs);
  check_shape_dtype(out, {T + 1}, acc, "out");
  std::vector<double> losses(T);  // weight * mean per term
  dispatch_acc(acc, [&](auto acc_tag) {
    using A = decltype(acc_tag);
    for (int64_t r = 0; r < P; ++r) {
      const at::Tensor& p = preds[r];
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.scalar_type(), "cyclegan_loss_fwd", [&] {
        dispatch_gan_mode(static_cast<int>(gan_mode), [&](auto tag) {
          const double sum = gan_sum<scalar_t, A, decltype(tag)::value>(p.const_data_ptr<scalar_t>(), p.numel(),
                                                                         static_cast<A>(targets[r]));
          losses[r] = sum * pred_weights[r] / static_cast<double>(p.numel());
        });
      });
    }
    for (const auto& group : l1_groups(ys)) {
      const at::Tensor& y = ys[group[0]];
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "cyclegan_loss_fwd", [&] {
        const scalar_t* xp[kMaxGroup] = {};
        uint8_t* sp[kMaxGroup] = {};
        for (size_t k = 0; k < group.size(); ++k) {
          xp[k] = xs[group[k]].const_data_ptr<scalar_t>();
          sp[k] = signs.empty() ? nullptr : signs[group[k]].mutable_data_ptr<uint8_t>();
        }
        double sums[kMaxGroup];
        const scalar_t* yp = y.const_data_ptr<scalar_t>();
        if (group.size() == 2) {
          l1_group_sums<scalar_t, A, 2>(xp, yp, sp, y.numel(), sums);
        } else {
          l1_group_sums<scalar_t, A, 1>(xp, yp, sp, y.numel(), sums);
        }
        for (size_t k = 0; k < group.size(); ++k) {
          losses[P + group[k]] = sums[k] * l1_weights[group[k]] / static_cast<double>(y.numel());
        }
      });
    }
  });
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
                       const std::vector<at::Tensor>& xs, const std::vector<at::Tensor>& signs,
                       const std::vector<double>& l1_weights, int64_t gan_mode,
                       const std::vector<std::optional<at::Tensor>>& dxs,
                       const std::vector<std::optional<at::Tensor>>& dys) {
  check_terms(preds, targets, pred_weights, xs, l1_weights, gan_mode);
  const int64_t P = static_cast<int64_t>(preds.size()), T = P + static_cast<int64_t>(xs.size());
  TORCH_CHECK_VALUE(static_cast<int64_t>(dxs.size()) == T && static_cast<int64_t>(dys.size()) == T,
                    "dxs and dys must have one entry (a tensor or None) per term");
  check_cpu_float(dloss, "dloss");
  TORCH_CHECK_VALUE(dloss.dim() == 1 && dloss.size(0) == T + 1, "dloss must have shape (", T + 1, "), got ",
                    dloss.sizes());
  const at::Tensor g = dloss.to(at::kDouble).contiguous();
  const double* gp = g.const_data_ptr<double>();
  const at::ScalarType acc = terms_acc(preds, xs);
  auto has = [](const std::optional<at::Tensor>& t) { return t.has_value() && t->defined(); };
  for (int64_t r = 0; r < T; ++r) {
    const bool pair = r >= P;
    const at::Tensor& x = pair ? xs[r - P] : preds[r];
    if (has(dxs[r])) check_like(*dxs[r], x, "dxs[i]");
    if (has(dys[r])) {
      TORCH_CHECK_VALUE(pair, "dys[", r, "] given for a GAN term");
      check_like(*dys[r], x, "dys[i]");  // the forward checked that y is laid out as x
    }
    if (pair && (has(dxs[r]) || has(dys[r]))) {
      TORCH_CHECK_VALUE(signs.size() == xs.size(),
                        "signs must have one entry per L1 pair (the forward ran without keeping them)");
      check_signs(signs[r - P], x, r - P);
    }
  }
  dispatch_acc(acc, [&](auto acc_tag) {
    using A = decltype(acc_tag);
    for (int64_t r = 0; r < T; ++r) {
      const bool pair = r >= P;
      const at::Tensor& x = pair ? xs[r - P] : preds[r];
      if (!has(dxs[r]) && !has(dys[r])) continue;
      // The term enters the output twice: as itself and inside the total.
      const double weight = pair ? l1_weights[r - P] : pred_weights[r];
      const A scale = static_cast<A>((gp[r] + gp[T]) * weight / static_cast<double>(x.numel()));
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "cyclegan_loss_bwd", [&] {
        scalar_t* dx = has(dxs[r]) ? dxs[r]->mutable_data_ptr<scalar_t>() : nullptr;
        if (pair) {
          scalar_t* dy = has(dys[r]) ? dys[r]->mutable_data_ptr<scalar_t>() : nullptr;
          l1_grads<scalar_t, A>(signs[r - P].const_data_ptr<uint8_t>(), dx, dy, x.numel(), scale);
        } else {
          dispatch_gan_mode(static_cast<int>(gan_mode), [&](auto tag) {
            gan_grads<scalar_t, A, decltype(tag)::value>(x.const_data_ptr<scalar_t>(), dx, x.numel(),
                                                         static_cast<A>(targets[r]), scale);
          });
        }
      });
    }
  });
}

}  // namespace effgan
