/*
 * Training kernels for the tfjs wasm backend that XNNPACK's operators express badly, compiled to
 * WebAssembly with 128-bit SIMD (see build.sh). The module imports its memory: tfjs' own, so that
 * the kernels work on tensors in place (simd-kernels.ts moves the stack pointer into a block from
 * tfjs' allocator), or one of its own. No libc and no static data; only matmul uses the stack.
 */
#include <wasm_simd128.h>

/*
 * acc + a * b. Built with -mrelaxed-simd (kernels-relaxed.wasm) it is one fused multiply-add,
 * f32x4.relaxed_madd (an FMA on x86 with FMA3 and on ARM; the spec lets an engine without one
 * round twice); otherwise (kernels.wasm) a multiply and an add.
 */
#ifdef __wasm_relaxed_simd__
#define MADD(acc, a, b) wasm_f32x4_relaxed_madd((a), (b), (acc))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#endif

/*
 * The register tiles the GEMM-like kernels share: a 4x8 tile of an output matrix whose rows are
 * `ld` floats apart, as eight v128 accumulators (SROA keeps them in registers once inlined), and a
 * 1x8 row for leftovers. A step adds splat(a[i * as]) * g[0..8] to row i.
 */
typedef struct {
  v128_t r[8];
} Tile;

static inline Tile tile_load(const float *t, int ld) {
  Tile v;
  for (int i = 0; i < 4; i++) {
    v.r[2 * i] = wasm_v128_load(t + i * ld);
    v.r[2 * i + 1] = wasm_v128_load(t + i * ld + 4);
  }
  return v;
}

static inline void tile_store(float *t, int ld, Tile v) {
  for (int i = 0; i < 4; i++) {
    wasm_v128_store(t + i * ld, v.r[2 * i]);
    wasm_v128_store(t + i * ld + 4, v.r[2 * i + 1]);
  }
}

static inline Tile tile_madd(Tile v, const float *a, int as, const float *g) {
  const v128_t g0 = wasm_v128_load(g), g1 = wasm_v128_load(g + 4);
  for (int i = 0; i < 4; i++) {
    const v128_t s = wasm_v128_load32_splat(a + i * as);
    v.r[2 * i] = MADD(v.r[2 * i], s, g0);
    v.r[2 * i + 1] = MADD(v.r[2 * i + 1], s, g1);
  }
  return v;
}

typedef struct {
  v128_t lo, hi;
} Row;

static inline Row row_load(const float *t) { return (Row){wasm_v128_load(t), wasm_v128_load(t + 4)}; }

static inline void row_store(float *t, Row v) { wasm_v128_store(t, v.lo), wasm_v128_store(t + 4, v.hi); }

static inline Row row_madd(Row v, const float *a, const float *g) {
  const v128_t s = wasm_v128_load32_splat(a);
  return (Row){MADD(v.lo, s, wasm_v128_load(g)), MADD(v.hi, s, wasm_v128_load(g + 4))};
}

typedef struct {
  int B, H, W, Ci;    /* x: [B, H, W, Ci] */
  int oH, oW, Co;     /* dy: [B, oH, oW, Co] */
  int kH, kW;         /* dw: [kH, kW, Ci, Co] */
  int sh, sw, dh, dw; /* strides, dilations */
  int pt, pl;         /* top / left padding */
} Conv;

/* First ox whose tap (offset `off` = k * dilation - pad) lands at ix >= 0, and one past the last below W. */
static int first_ox(int off, int s) { return off >= 0 ? 0 : (-off + s - 1) / s; }
static int end_ox(int off, int s, int W, int oW) {
  int last = W - 1 - off; /* ox * s <= last */
  if (last < 0) return 0;
  int e = last / s + 1;
  return e < oW ? e : oW;
}

/*
 * dw[kh][kw][ci][co] += sum over (b, oy, ox) of x[b][iy][ix][ci] * dy[b][oy][ox][co],
 * iy = oy*sh + kh*dh - pt, ix = ox*sw + kw*dw - pl. dw must be zeroed by the caller.
 * Rows of dy are taken in chunks of `rows` (one image's worth fits in L2); for each chunk, tap and
 * 4x8 (ci x co) tile, the tile's 8 accumulators stay in registers over every position.
 */
__attribute__((export_name("conv2d_backprop_filter")))
void conv2d_backprop_filter(const Conv *c, const float *x, const float *dy, float *dwt, int rows) {
  const int Ci = c->Ci, Co = c->Co;
  const int ci4 = Ci & ~3, co8 = Co & ~7;
  for (int b = 0; b < c->B; b++) {
    for (int oy0 = 0; oy0 < c->oH; oy0 += rows) {
      int oy1 = oy0 + rows < c->oH ? oy0 + rows : c->oH;
      for (int kh = 0; kh < c->kH; kh++) {
        for (int kw = 0; kw < c->kW; kw++) {
          const int offx = kw * c->dw - c->pl;
          const int lo = first_ox(offx, c->sw), hi = end_ox(offx, c->sw, c->W, c->oW);
          if (lo >= hi) continue;
          float *tap = dwt + (kh * c->kW + kw) * Ci * Co;
          const int xs = c->sw * Ci;
          for (int ci = 0; ci < Ci; ci += 4) {
            const int nci = ci < ci4 ? 4 : 1; /* 4-row tiles, then single rows */
            if (nci == 1) ci = ci4;
            for (int r = ci; r < (nci == 4 ? ci + 4 : Ci); r += nci) {
              for (int co = 0; co < co8; co += 8) {
                float *t = tap + r * Co + co;
                if (nci == 4) {
                  Tile acc = tile_load(t, Co);
                  for (int oy = oy0; oy < oy1; oy++) {
                    const int iy = oy * c->sh + kh * c->dh - c->pt;
                    if (iy < 0 || iy >= c->H) continue;
                    const float *xp = x + ((b * c->H + iy) * c->W + lo * c->sw + offx) * Ci + r;
                    const float *gp = dy + ((b * c->oH + oy) * c->oW + lo) * Co + co;
                    for (int ox = lo; ox < hi; ox++, xp += xs, gp += Co) acc = tile_madd(acc, xp, 1, gp);
                  }
                  tile_store(t, Co, acc);
                } else {
                  Row acc = row_load(t);
                  for (int oy = oy0; oy < oy1; oy++) {
                    const int iy = oy * c->sh + kh * c->dh - c->pt;
                    if (iy < 0 || iy >= c->H) continue;
                    const float *xp = x + ((b * c->H + iy) * c->W + lo * c->sw + offx) * Ci + r;
                    const float *gp = dy + ((b * c->oH + oy) * c->oW + lo) * Co + co;
                    for (int ox = lo; ox < hi; ox++, xp += xs, gp += Co) acc = row_madd(acc, xp, gp);
                  }
                  row_store(t, acc);
                }
              }
              /* Output channels past the last multiple of 8: scalar. */
              for (int co = co8; co < Co; co++) {
                for (int rr = r; rr < r + nci; rr++) {
                  float acc = tap[rr * Co + co];
                  for (int oy = oy0; oy < oy1; oy++) {
                    const int iy = oy * c->sh + kh * c->dh - c->pt;
                    if (iy < 0 || iy >= c->H) continue;
                    const float *xp = x + ((b * c->H + iy) * c->W + lo * c->sw + offx) * Ci + rr;
                    const float *gp = dy + ((b * c->oH + oy) * c->oW + lo) * Co + co;
                    for (int ox = lo; ox < hi; ox++, xp += xs, gp += Co) acc += *xp * *gp;
                  }
                  tap[rr * Co + co] = acc;
                }
              }
            }
            if (nci == 1) break;
          }
        }
      }
    }
  }
}

typedef struct {
  int B, H, W, C;   /* x: [B, H, W, C] */
  int oH, oW;       /* dy: [B, oH, oW, C] */
  int fH, fW;       /* window */
  int sh, sw;       /* strides */
  int pt, pl;       /* top / left padding */
} Pool;

/*
 * Max-pool gradient: each dy element goes to the first maximum (row-major) of its window, as
 * tfjs-cpu and TensorFlow route it; overlapping windows add. dx must be zeroed by the caller.
 * Four channels at a time: a running max and its index per lane, then four scalar adds.
 */
__attribute__((export_name("max_pool_grad")))
void max_pool_grad(const Pool *p, const float *x, const float *dy, float *dx) {
  const int C = p->C, c4 = C & ~3;
  const v128_t lane = wasm_i32x4_make(0, 1, 2, 3);
  const float *g = dy;
  for (int b = 0; b < p->B; b++) {
    for (int oy = 0; oy < p->oH; oy++) {
      const int y0 = oy * p->sh - p->pt;
      const int r0 = y0 > 0 ? y0 : 0, r1 = y0 + p->fH < p->H ? y0 + p->fH : p->H;
      for (int ox = 0; ox < p->oW; ox++, g += C) {
        const int x0 = ox * p->sw - p->pl;
        const int q0 = x0 > 0 ? x0 : 0, q1 = x0 + p->fW < p->W ? x0 + p->fW : p->W;
        for (int ch = 0; ch < c4; ch += 4) {
          v128_t best = wasm_f32x4_splat(-__builtin_inff());
          v128_t at = wasm_i32x4_splat(-1);
          for (int r = r0; r < r1; r++) {
            for (int q = q0; q < q1; q++) {
              const int i = ((b * p->H + r) * p->W + q) * C + ch;
              const v128_t v = wasm_v128_load(x + i);
              const v128_t more = wasm_f32x4_gt(v, best);
              best = wasm_v128_bitselect(v, best, more);
              at = wasm_v128_bitselect(wasm_i32x4_add(wasm_i32x4_splat(i), lane), at, more);
            }
          }
          int i;
          if ((i = wasm_i32x4_extract_lane(at, 0)) >= 0) dx[i] += g[ch];
          if ((i = wasm_i32x4_extract_lane(at, 1)) >= 0) dx[i] += g[ch + 1];
          if ((i = wasm_i32x4_extract_lane(at, 2)) >= 0) dx[i] += g[ch + 2];
          if ((i = wasm_i32x4_extract_lane(at, 3)) >= 0) dx[i] += g[ch + 3];
        }
        for (int ch = c4; ch < C; ch++) {
          float best = -__builtin_inff();
          int at = -1;
          for (int r = r0; r < r1; r++) {
            for (int q = q0; q < q1; q++) {
              const int i = ((b * p->H + r) * p->W + q) * C + ch;
              if (x[i] > best) best = x[i], at = i;
            }
          }
          if (at >= 0) dx[at] += g[ch];
        }
      }
    }
  }
}

typedef struct {
  int M, N, K;
  int transA, transB; /* A is [K, M] / B is [N, K] when set */
} Gemm;

/* Panels kept in L2 while every row tile of C passes over them: KC of the reduction x NC columns. */
#define KC 256
#define NC 512

static inline int min_i(int a, int b) { return a < b ? a : b; }

/*
 * C[M][N] += op(A)[M][K] * op(B)[K][N], row-major; C must be zeroed by the caller. With transB, B
 * is first transposed into `scratch` (K*N floats, in 16x16 blocks). For each KC x NC panel of B,
 * each 4-row tile of A (in L1; packed when A is transposed, as its strided rows alias there) meets
 * every 8-column strip, its 4x8 tile of C held in registers over the panel; leftover rows go one
 * at a time, leftover columns scalar.
 */
__attribute__((export_name("matmul")))
void matmul(const Gemm *g, const float *A, const float *B, float *C, float *scratch) {
  const int M = g->M, N = g->N, K = g->K;
  if (g->transB) {
    for (int j0 = 0; j0 < N; j0 += 16)
      for (int k0 = 0; k0 < K; k0 += 16)
        for (int j = j0; j < min_i(j0 + 16, N); j++)
          for (int k = k0; k < min_i(k0 + 16, K); k++) scratch[k * N + j] = B[j * K + k];
    B = scratch;
  }
  /* A[i][k] sits at A + i*ra + k*ka. */
  const int ra = g->transA ? 1 : K, ka = g->transA ? M : 1;
  const int m4 = M & ~3, n8 = N & ~7;
  for (int n0 = 0; n0 < n8; n0 += NC) {
    const int n1 = min_i(n0 + NC, n8);
    for (int k0 = 0; k0 < K; k0 += KC) {
      const int k1 = min_i(k0 + KC, K);
      int i = 0;
      for (; i < m4; i += 4) {
        float pack[4 * KC];
        const float *ap0 = A + i * ra + k0 * ka;
        int pr = ra, pk = ka;
        if (g->transA) {
          for (int k = k0; k < k1; k++)
            for (int r = 0; r < 4; r++) pack[(k - k0) * 4 + r] = A[(i + r) * ra + k * ka];
          ap0 = pack, pr = 1, pk = 4;
        }
        for (int j = n0; j < n1; j += 8) {
          Tile acc = tile_load(C + i * N + j, N);
          const float *ap = ap0;
          const float *bp = B + k0 * N + j;
          for (int k = k0; k < k1; k++, ap += pk, bp += N) acc = tile_madd(acc, ap, pr, bp);
          tile_store(C + i * N + j, N, acc);
        }
      }
      for (; i < M; i++) {
        for (int j = n0; j < n1; j += 8) {
          Row acc = row_load(C + i * N + j);
          const float *ap = A + i * ra + k0 * ka;
          const float *bp = B + k0 * N + j;
          for (int k = k0; k < k1; k++, ap += ka, bp += N) acc = row_madd(acc, ap, bp);
          row_store(C + i * N + j, acc);
        }
      }
    }
  }
  for (int i = 0; i < M; i++) {
    for (int j = n8; j < N; j++) {
      float acc = 0;
      for (int k = 0; k < K; k++) acc += A[i * ra + k * ka] * B[k * N + j];
      C[i * N + j] = acc;
    }
  }
}

typedef struct {
  int n;
  float lr, rho, eps;
} Adadelta;

/*
 * One Keras/PyTorch Adadelta step over n weights: acc_grad' = rho*acc_grad + (1-rho)*g^2,
 * update = sqrt(acc_delta + eps) / sqrt(acc_grad' + eps) * g,
 * acc_delta' = rho*acc_delta + (1-rho)*update^2, w' = w - lr*update. Outputs may not alias inputs.
 */
__attribute__((export_name("adadelta")))
void adadelta(const Adadelta *p, const float *w, const float *g, const float *ag, const float *ad,
              float *w2, float *ag2, float *ad2) {
  const int n = p->n, n4 = n & ~3;
  const float lr = p->lr, rho = p->rho, eps = p->eps;
  const v128_t vlr = wasm_f32x4_splat(lr), vrho = wasm_f32x4_splat(rho);
  const v128_t vrest = wasm_f32x4_splat(1 - rho), veps = wasm_f32x4_splat(eps);
  for (int i = 0; i < n4; i += 4) {
    const v128_t gi = wasm_v128_load(g + i), d = wasm_v128_load(ad + i);
    const v128_t a = wasm_f32x4_add(wasm_f32x4_mul(vrho, wasm_v128_load(ag + i)),
                                    wasm_f32x4_mul(vrest, wasm_f32x4_mul(gi, gi)));
    const v128_t u = wasm_f32x4_mul(wasm_f32x4_div(wasm_f32x4_sqrt(wasm_f32x4_add(d, veps)),
                                                   wasm_f32x4_sqrt(wasm_f32x4_add(a, veps))),
                                    gi);
    wasm_v128_store(ag2 + i, a);
    wasm_v128_store(ad2 + i, wasm_f32x4_add(wasm_f32x4_mul(vrho, d), wasm_f32x4_mul(vrest, wasm_f32x4_mul(u, u))));
    wasm_v128_store(w2 + i, wasm_f32x4_sub(wasm_v128_load(w + i), wasm_f32x4_mul(vlr, u)));
  }
  for (int i = n4; i < n; i++) {
    const float a = rho * ag[i] + (1 - rho) * g[i] * g[i];
    const float u = __builtin_sqrtf(ad[i] + eps) / __builtin_sqrtf(a + eps) * g[i];
    ag2[i] = a;
    ad2[i] = rho * ad[i] + (1 - rho) * u * u;
    w2[i] = w[i] - lr * u;
  }
}

/* Each output row's epilogue: + bias (if any), then relu (if asked). */
static void bias_relu(float *row, int n, int Co, const float *bias, int relu) {
  const int co4 = Co & ~3;
  const v128_t zero = wasm_f32x4_splat(0);
  for (int p = 0; p < n; p++, row += Co) {
    int co = 0;
    for (; co < co4; co += 4) {
      v128_t v = wasm_v128_load(row + co);
      if (bias) v = wasm_f32x4_add(v, wasm_v128_load(bias + co));
      if (relu) v = wasm_v128_andnot(v, wasm_f32x4_lt(v, zero));
      wasm_v128_store(row + co, v);
    }
    for (; co < Co; co++) {
      float v = row[co] + (bias ? bias[co] : 0);
      row[co] = relu && v < 0 ? 0 : v;
    }
  }
}

/*
 * Forward convolution, same geometry struct as the filter gradient (dw = filter [kH, kW, Ci, Co]):
 * y[b][oy][ox][co] = act(sum over taps and ci of x[b][iy][ix][ci] * w[kh][kw][ci][co] + bias[co]),
 * bias optional (null), act relu when `relu` is set. y must be zeroed by the caller. Per output
 * row and tap, 4-position x 8-channel tiles of y are loaded, run over ci in registers, and stored.
 */
__attribute__((export_name("conv2d")))
void conv2d(const Conv *c, const float *x, const float *w, const float *bias, float *y, int relu) {
  const int Ci = c->Ci, Co = c->Co, co8 = Co & ~7;
  const int xs = c->sw * Ci;
  for (int b = 0; b < c->B; b++) {
    for (int oy = 0; oy < c->oH; oy++) {
      float *yrow = y + (b * c->oH + oy) * c->oW * Co;
      for (int kh = 0; kh < c->kH; kh++) {
        const int iy = oy * c->sh + kh * c->dh - c->pt;
        if (iy < 0 || iy >= c->H) continue;
        for (int kw = 0; kw < c->kW; kw++) {
          const int offx = kw * c->dw - c->pl;
          const int lo = first_ox(offx, c->sw), hi = end_ox(offx, c->sw, c->W, c->oW);
          const float *wt = w + (kh * c->kW + kw) * Ci * Co;
          const float *xrow = x + ((b * c->H + iy) * c->W + offx) * Ci;
          for (int co = 0; co < co8; co += 8) {
            int ox = lo;
            for (; ox + 4 <= hi; ox += 4) {
              float *t = yrow + ox * Co + co;
              Tile acc = tile_load(t, Co);
              const float *xp = xrow + ox * xs;
              const float *wp = wt + co;
              for (int ci = 0; ci < Ci; ci++, xp++, wp += Co) acc = tile_madd(acc, xp, xs, wp);
              tile_store(t, Co, acc);
            }
            for (; ox < hi; ox++) {
              float *t = yrow + ox * Co + co;
              Row acc = row_load(t);
              const float *xp = xrow + ox * xs;
              const float *wp = wt + co;
              for (int ci = 0; ci < Ci; ci++, xp++, wp += Co) acc = row_madd(acc, xp, wp);
              row_store(t, acc);
            }
          }
          for (int co = co8; co < Co; co++) {
            for (int ox = lo; ox < hi; ox++) {
              float acc = yrow[ox * Co + co];
              const float *xp = xrow + ox * xs;
              for (int ci = 0; ci < Ci; ci++) acc += xp[ci] * wt[ci * Co + co];
              yrow[ox * Co + co] = acc;
            }
          }
        }
      }
      if (bias || relu) bias_relu(yrow, c->oW, Co, bias, relu);
    }
  }
}

typedef struct {
  int n;
  unsigned seed;
  float keep; /* probability of keeping an element */
} Dropout;

/*
 * Inverted dropout: mask[i] = 1/keep with probability keep, else 0; y = x * mask. Four xorshift32
 * streams, one per lane, seeded from `seed`; uniforms from their top 24 bits.
 */
__attribute__((export_name("dropout")))
void dropout(const Dropout *p, const float *x, float *y, float *mask) {
  const int n = p->n, n4 = n & ~3;
  unsigned s = p->seed | 1;
  unsigned lanes[4];
  for (int l = 0; l < 4; l++) lanes[l] = (s = s * 1664525u + 1013904223u) | 1;
  v128_t state = wasm_u32x4_make(lanes[0], lanes[1], lanes[2], lanes[3]);
  const v128_t keep = wasm_f32x4_splat(p->keep), scale = wasm_f32x4_splat(1.0f / p->keep);
  const v128_t unit = wasm_f32x4_splat(1.0f / 16777216.0f), zero = wasm_f32x4_splat(0);
  int i = 0;
  for (; i < n4; i += 4) {
    state = wasm_v128_xor(state, wasm_i32x4_shl(state, 13));
    state = wasm_v128_xor(state, wasm_u32x4_shr(state, 17));
    state = wasm_v128_xor(state, wasm_i32x4_shl(state, 5));
    const v128_t u = wasm_f32x4_mul(wasm_f32x4_convert_u32x4(wasm_u32x4_shr(state, 8)), unit);
    const v128_t m = wasm_v128_bitselect(scale, zero, wasm_f32x4_lt(u, keep));
    wasm_v128_store(mask + i, m);
    wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(x + i), m));
  }
  for (; i < n; i++) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    const float m = (float)(s >> 8) / 16777216.0f < p->keep ? 1.0f / p->keep : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

/*
 * The depthwise filter gradient (multiplier 1): dw[kh][kw][c] += sum over (b, oy, ox) of
 * x[b][iy][ix][c] * dy[b][oy][ox][c]. dw must be zeroed by the caller. Per output row and tap, 4
 * channels of the tap accumulate in a register along the row (x and dy rows stay in L1).
 */
__attribute__((export_name("depthwise_backprop_filter")))
void depthwise_backprop_filter(const Conv *c, const float *x, const float *dy, float *dwt) {
  const int C = c->Ci, c4 = C & ~3;
  for (int b = 0; b < c->B; b++) {
    for (int oy = 0; oy < c->oH; oy++) {
      const float *grow = dy + (b * c->oH + oy) * c->oW * C;
      for (int kh = 0; kh < c->kH; kh++) {
        const int iy = oy * c->sh + kh * c->dh - c->pt;
        if (iy < 0 || iy >= c->H) continue;
        const float *xrow = x + (b * c->H + iy) * c->W * C;
        for (int kw = 0; kw < c->kW; kw++) {
          const int offx = kw * c->dw - c->pl;
          const int lo = first_ox(offx, c->sw), hi = end_ox(offx, c->sw, c->W, c->oW);
          float *tap = dwt + (kh * c->kW + kw) * C;
          for (int ch = 0; ch < c4; ch += 4) {
            v128_t a0 = wasm_v128_load(tap + ch), a1 = wasm_f32x4_splat(0);
            int ox = lo;
            for (; ox + 2 <= hi; ox += 2) {
              const float *xp = xrow + (ox * c->sw + offx) * C + ch, *gp = grow + ox * C + ch;
              a0 = MADD(a0, wasm_v128_load(xp), wasm_v128_load(gp));
              a1 = MADD(a1, wasm_v128_load(xp + c->sw * C), wasm_v128_load(gp + C));
            }
            if (ox < hi) {
              a0 = MADD(a0, wasm_v128_load(xrow + (ox * c->sw + offx) * C + ch), wasm_v128_load(grow + ox * C + ch));
            }
            wasm_v128_store(tap + ch, wasm_f32x4_add(a0, a1));
          }
          for (int ch = c4; ch < C; ch++) {
            float acc = tap[ch];
            for (int ox = lo; ox < hi; ox++) acc += xrow[(ox * c->sw + offx) * C + ch] * grow[ox * C + ch];
            tap[ch] = acc;
          }
        }
      }
    }
  }
}

/*
 * The depthwise input gradient (multiplier 1): every dy element, times each tap's weight, is added
 * to the x position that tap read: dx[b][iy][ix][c] += dy[b][oy][ox][c] * w[kh][kw][c]. dx must be
 * zeroed by the caller. Per output row and tap, a whole dx row segment is updated 4 channels at a time.
 */
__attribute__((export_name("depthwise_backprop_input")))
void depthwise_backprop_input(const Conv *c, const float *dy, const float *w, float *dx) {
  const int C = c->Ci, c4 = C & ~3;
  for (int b = 0; b < c->B; b++) {
    for (int oy = 0; oy < c->oH; oy++) {
      const float *grow = dy + (b * c->oH + oy) * c->oW * C;
      for (int kh = 0; kh < c->kH; kh++) {
        const int iy = oy * c->sh + kh * c->dh - c->pt;
        if (iy < 0 || iy >= c->H) continue;
        float *xrow = dx + (b * c->H + iy) * c->W * C;
        for (int kw = 0; kw < c->kW; kw++) {
          const int offx = kw * c->dw - c->pl;
          const int lo = first_ox(offx, c->sw), hi = end_ox(offx, c->sw, c->W, c->oW);
          const float *tap = w + (kh * c->kW + kw) * C;
          for (int ch = 0; ch < c4; ch += 4) {
            const v128_t wv = wasm_v128_load(tap + ch);
            for (int ox = lo; ox < hi; ox++) {
              float *xp = xrow + (ox * c->sw + offx) * C + ch;
              wasm_v128_store(xp, MADD(wasm_v128_load(xp), wasm_v128_load(grow + ox * C + ch), wv));
            }
          }
          for (int ch = c4; ch < C; ch++) {
            for (int ox = lo; ox < hi; ox++) xrow[(ox * c->sw + offx) * C + ch] += grow[ox * C + ch] * tap[ch];
          }
        }
      }
    }
  }
}

typedef struct {
  int n, lo_open; /* lo_open: x must exceed lo (else x >= lo) */
  float lo, hi;
} Clip;

/*
 * The gradient of a clip to [lo, hi]: dx = dy where x is inside (lo < x when lo_open, else
 * lo <= x; x <= hi), else 0. Relu6 (lo 0 open, hi 6) and ClipByValue (both closed) take it
 * in one pass where tfjs composes 3-4 comparisons, a Select or a Cast, and Multiplies.
 */
__attribute__((export_name("clip_grad")))
void clip_grad(const Clip *p, const float *x, const float *dy, float *dx) {
  const int len = p->n, n4 = len & ~3;
  const v128_t lo = wasm_f32x4_splat(p->lo), hi = wasm_f32x4_splat(p->hi);
  int i = 0;
  for (; i < n4; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    const v128_t above = p->lo_open ? wasm_f32x4_gt(v, lo) : wasm_f32x4_ge(v, lo);
    const v128_t keep = wasm_v128_and(above, wasm_f32x4_le(v, hi));
    wasm_v128_store(dx + i, wasm_v128_and(wasm_v128_load(dy + i), keep));
  }
  for (; i < len; i++) {
    const int above = p->lo_open ? x[i] > p->lo : x[i] >= p->lo;
    dx[i] = above && x[i] <= p->hi ? dy[i] : 0;
  }
}

typedef struct {
  int N, C; /* x: [N, C], normalised per channel over its N rows */
  float eps;
} BatchNorm;

/* Rows summed into a partial before it joins the total: float32 sums of 10^5 rows stay accurate. */
#define BN_CHUNK 256

/* sum[c] = sum over rows of f(x[r][c]) where f is x - shift: two-level (chunk, total) float sums. */
static void column_sums(const float *x, int N, int C, const float *shift, float *sum, float *part) {
  const int c4 = C & ~3;
  for (int c = 0; c < C; c++) sum[c] = 0;
  for (int r0 = 0; r0 < N; r0 += BN_CHUNK) {
    const int r1 = min_i(r0 + BN_CHUNK, N);
    for (int c = 0; c < C; c++) part[c] = 0;
    for (int r = r0; r < r1; r++) {
      const float *row = x + r * C;
      int c = 0;
      for (; c < c4; c += 4) {
        const v128_t d = wasm_f32x4_sub(wasm_v128_load(row + c), wasm_v128_load(shift + c));
        wasm_v128_store(part + c, wasm_f32x4_add(wasm_v128_load(part + c), d));
      }
      for (; c < C; c++) part[c] += row[c] - shift[c];
    }
    for (int c = 0; c < C; c++) sum[c] += part[c];
  }
}

/*
 * Batch normalisation in training mode, one pass for the moments and one for the output:
 * mean[c] and the biased var[c] over the N rows, y = (x - mean) / sqrt(var + eps) * gamma + beta.
 * The variance is the mean of squared deviations from the mean (two passes, no cancellation).
 * scratch: 2C floats.
 */
__attribute__((export_name("batch_norm_train")))
void batch_norm_train(const BatchNorm *p, const float *x, const float *gamma, const float *beta, float *y,
                      float *mean, float *var, float *scratch) {
  const int N = p->N, C = p->C, c4 = C & ~3;
  float *zero = scratch, *part = scratch + C;
  for (int c = 0; c < C; c++) zero[c] = 0;
  column_sums(x, N, C, zero, mean, part);
  for (int c = 0; c < C; c++) mean[c] /= N;
  /* Sum of squared deviations, chunked the same way. */
  for (int c = 0; c < C; c++) var[c] = 0;
  for (int r0 = 0; r0 < N; r0 += BN_CHUNK) {
    const int r1 = min_i(r0 + BN_CHUNK, N);
    for (int c = 0; c < C; c++) part[c] = 0;
    for (int r = r0; r < r1; r++) {
      const float *row = x + r * C;
      int c = 0;
      for (; c < c4; c += 4) {
        const v128_t d = wasm_f32x4_sub(wasm_v128_load(row + c), wasm_v128_load(mean + c));
        wasm_v128_store(part + c, MADD(wasm_v128_load(part + c), d, d));
      }
      for (; c < C; c++) part[c] += (row[c] - mean[c]) * (row[c] - mean[c]);
    }
    for (int c = 0; c < C; c++) var[c] += part[c];
  }
  /* y = x * scale + shift, scale = gamma / sqrt(var + eps), shift = beta - mean * scale. */
  float *scale = zero, *shift = part;
  for (int c = 0; c < C; c++) {
    var[c] /= N;
    scale[c] = gamma[c] / __builtin_sqrtf(var[c] + p->eps);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  for (int r = 0; r < N; r++) {
    const float *row = x + r * C;
    float *out = y + r * C;
    int c = 0;
    for (; c < c4; c += 4)
      wasm_v128_store(out + c, MADD(wasm_v128_load(shift + c), wasm_v128_load(row + c), wasm_v128_load(scale + c)));
    for (; c < C; c++) out[c] = row[c] * scale[c] + shift[c];
  }
}

/*
 * Its gradient, the batch statistics depending on x: with xc = x - mean, s = 1 / sqrt(var + eps),
 * dbeta = sum(dy), dgamma = s * sum(dy * xc) and
 * dx = gamma * s * (dy - dbeta / N - xc * s^2 * sum(dy * xc) / N). scratch: 3C floats.
 */
__attribute__((export_name("batch_norm_train_grad")))
void batch_norm_train_grad(const BatchNorm *p, const float *x, const float *dy, const float *gamma,
                           const float *mean, const float *var, float *dx, float *dgamma, float *dbeta,
                           float *scratch) {
  const int N = p->N, C = p->C, c4 = C & ~3;
  float *sxy = dgamma, *part = scratch, *part2 = scratch + C;
  for (int c = 0; c < C; c++) dbeta[c] = 0, sxy[c] = 0;
  for (int r0 = 0; r0 < N; r0 += BN_CHUNK) {
    const int r1 = min_i(r0 + BN_CHUNK, N);
    for (int c = 0; c < C; c++) part[c] = 0, part2[c] = 0;
    for (int r = r0; r < r1; r++) {
      const float *xr = x + r * C, *gr = dy + r * C;
      int c = 0;
      for (; c < c4; c += 4) {
        const v128_t g = wasm_v128_load(gr + c);
        const v128_t d = wasm_f32x4_sub(wasm_v128_load(xr + c), wasm_v128_load(mean + c));
        wasm_v128_store(part + c, wasm_f32x4_add(wasm_v128_load(part + c), g));
        wasm_v128_store(part2 + c, MADD(wasm_v128_load(part2 + c), g, d));
      }
      for (; c < C; c++) part[c] += gr[c], part2[c] += gr[c] * (xr[c] - mean[c]);
    }
    for (int c = 0; c < C; c++) dbeta[c] += part[c], sxy[c] += part2[c];
  }
  /* dx = k1 * (dy - mdy) + k2 * (x - mean). */
  float *k1 = part, *k2 = part2, *mdy = scratch + 2 * C;
  for (int c = 0; c < C; c++) {
    const float s = 1 / __builtin_sqrtf(var[c] + p->eps);
    k1[c] = gamma[c] * s;
    k2[c] = -gamma[c] * s * s * s * sxy[c] / N;
    mdy[c] = dbeta[c] / N;
  }
  for (int r = 0; r < N; r++) {
    const float *xr = x + r * C, *gr = dy + r * C;
    float *out = dx + r * C;
    int c = 0;
    for (; c < c4; c += 4) {
      const v128_t d = wasm_f32x4_sub(wasm_v128_load(xr + c), wasm_v128_load(mean + c));
      const v128_t g = wasm_f32x4_sub(wasm_v128_load(gr + c), wasm_v128_load(mdy + c));
      wasm_v128_store(out + c, MADD(wasm_f32x4_mul(wasm_v128_load(k1 + c), g), wasm_v128_load(k2 + c), d));
    }
    for (; c < C; c++) out[c] = k1[c] * (gr[c] - mdy[c]) + k2[c] * (xr[c] - mean[c]);
  }
  for (int c = 0; c < C; c++) dgamma[c] = sxy[c] / __builtin_sqrtf(var[c] + p->eps);
}

/*
 * Batch normalisation with given statistics (inference; tfjs' FusedBatchNorm): y = (x - mean) /
 * sqrt(var + eps) * scale + offset over x viewed as [N, C], offset and scale optional (null: 0
 * and 1). As y = x * a + b with a and b per channel. scratch: 2C floats.
 */
__attribute__((export_name("batch_norm_infer")))
void batch_norm_infer(const BatchNorm *p, const float *x, const float *mean, const float *var,
                      const float *offset, const float *scale, float *y, float *scratch) {
  const int N = p->N, C = p->C, c4 = C & ~3;
  float *a = scratch, *b = scratch + C;
  for (int c = 0; c < C; c++) {
    a[c] = (scale ? scale[c] : 1) / __builtin_sqrtf(var[c] + p->eps);
    b[c] = (offset ? offset[c] : 0) - mean[c] * a[c];
  }
  for (int r = 0; r < N; r++) {
    const float *row = x + r * C;
    float *out = y + r * C;
    int c = 0;
    for (; c < c4; c += 4)
      wasm_v128_store(out + c, MADD(wasm_v128_load(b + c), wasm_v128_load(row + c), wasm_v128_load(a + c)));
    for (; c < C; c++) out[c] = row[c] * a[c] + b[c];
  }
}

/*
 * The input gradient of a convolution with few input channels (an image's first conv: Ci = 1-7),
 * where the transposed convolution would have fewer than 8 output channels, which conv2d's
 * 8-wide tiles leave to scalar code: dx[b][iy][ix][ci] += sum over co of
 * w[kh][kw][ci][co] * dy[b][oy][ox][co] for every tap, as Co-long SIMD dot products. dx must be
 * zeroed by the caller; same geometry struct as conv2d.
 */
__attribute__((export_name("conv2d_backprop_input_thin")))
void conv2d_backprop_input_thin(const Conv *c, const float *dy, const float *w, float *dx) {
  const int Ci = c->Ci, Co = c->Co, co4 = Co & ~3;
  for (int b = 0; b < c->B; b++) {
    for (int oy = 0; oy < c->oH; oy++) {
      for (int kh = 0; kh < c->kH; kh++) {
        const int iy = oy * c->sh + kh * c->dh - c->pt;
        if (iy < 0 || iy >= c->H) continue;
        for (int kw = 0; kw < c->kW; kw++) {
          const int offx = kw * c->dw - c->pl;
          const int lo = first_ox(offx, c->sw), hi = end_ox(offx, c->sw, c->W, c->oW);
          const float *wt = w + (kh * c->kW + kw) * Ci * Co;
          for (int ox = lo; ox < hi; ox++) {
            float *xp = dx + ((b * c->H + iy) * c->W + ox * c->sw + offx) * Ci;
            const float *gp = dy + ((b * c->oH + oy) * c->oW + ox) * Co;
            for (int ci = 0; ci < Ci; ci++) {
              const float *wr = wt + ci * Co;
              v128_t acc = wasm_f32x4_splat(0);
              int co = 0;
              for (; co < co4; co += 4) acc = MADD(acc, wasm_v128_load(wr + co), wasm_v128_load(gp + co));
              float s = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) +
                        wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3);
              for (; co < Co; co++) s += wr[co] * gp[co];
              xp[ci] += s;
            }
          }
        }
      }
    }
  }
}

/*
 * Winograd's input transform (see conv2d_winograd): V[k][t][ci] = (B^T d B)[k] for the 4x4 input
 * patch d of every tile t of tile rows ty0 .. ty0+nr-1 of image b (T tiles a row), four ci at a time,
 * zeros outside the image.
 */
static void winograd_input(const Conv *c, const float *x, int b, int ty0, int nr, int T, float *V) {
  const int Ci = c->Ci, H = c->H, W = c->W, nt = nr * T, step = nt * Ci;
  const v128_t zero = wasm_f32x4_splat(0);
  for (int r = 0; r < nr; r++) {
    const int iy0 = 2 * (ty0 + r) - c->pt;
    for (int tx = 0; tx < T; tx++) {
      const int ix0 = 2 * tx - c->pl, t = r * T + tx;
      for (int ci = 0; ci < Ci; ci += 4) {
        v128_t d[4][4], e[4][4];
        for (int i = 0; i < 4; i++) {
          const int iy = iy0 + i;
          for (int j = 0; j < 4; j++) {
            const int ix = ix0 + j;
            d[i][j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? wasm_v128_load(x + ((b * H + iy) * W + ix) * Ci + ci)
                                                             : zero;
          }
        }
        for (int j = 0; j < 4; j++) {
          e[0][j] = wasm_f32x4_sub(d[0][j], d[2][j]);
          e[1][j] = wasm_f32x4_add(d[1][j], d[2][j]);
          e[2][j] = wasm_f32x4_sub(d[2][j], d[1][j]);
          e[3][j] = wasm_f32x4_sub(d[1][j], d[3][j]);
        }
        for (int i = 0; i < 4; i++) {
          float *v = V + ((i * 4) * nt + t) * Ci + ci;
          wasm_v128_store(v, wasm_f32x4_sub(e[i][0], e[i][2]));
          wasm_v128_store(v + step, wasm_f32x4_add(e[i][1], e[i][2]));
          wasm_v128_store(v + 2 * step, wasm_f32x4_sub(e[i][2], e[i][1]));
          wasm_v128_store(v + 3 * step, wasm_f32x4_sub(e[i][1], e[i][3]));
        }
      }
    }
  }
}

/*
 * A 3x3, stride-1, dilation-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", CVPR 2016): each 2x2 block of outputs (a
 * tile) costs 16 multiply-adds per (ci, co) instead of 36. With d a 4x4 input patch and g a 3x3
 * filter, Y = A^T [(G g G^T) . (B^T d B)] A, where
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * Same geometry struct, padding, bias and relu as `conv2d` (NHWC; Ci a multiple of 4, Co of 8), but
 * y is written, not accumulated. The 16 products become 16 GEMMs, M[k][t][co] = sum over ci of
 * V[k][t][ci] * U[k][ci][co], over `rows` tile rows at a time. Scratch: 16*Ci*Co floats for U, then
 * 16*rows*T*(Ci + Co) for V and M, T = ceil(oW / 2).
 */
__attribute__((export_name("conv2d_winograd")))
void conv2d_winograd(const Conv *c, const float *x, const float *w, const float *bias, float *y,
                     float *scratch, int relu, int rows) {
  const int Ci = c->Ci, Co = c->Co, oH = c->oH, oW = c->oW;
  const int T = (oW + 1) / 2, TH = (oH + 1) / 2;
  float *U = scratch;
  float *V = U + 16 * Ci * Co;
  float *M = V + 16 * rows * T * Ci;
  const v128_t half = wasm_f32x4_splat(0.5f), zero = wasm_f32x4_splat(0);
  /* U = G g G^T for every (ci, co), four co at a time. */
  for (int ci = 0; ci < Ci; ci++) {
    for (int co = 0; co < Co; co += 4) {
      v128_t g[3][3], t[4][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) g[i][j] = wasm_v128_load(w + ((i * 3 + j) * Ci + ci) * Co + co);
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(g[0][j], g[1][j]), g[2][j]));
        t[2][j] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(g[0][j], g[1][j]), g[2][j]));
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {
        const v128_t u[4] = {
            t[i][0],
            wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(t[i][0], t[i][1]), t[i][2])),
            wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(t[i][0], t[i][1]), t[i][2])),
            t[i][2],
        };
        for (int j = 0; j < 4; j++) wasm_v128_store(U + ((i * 4 + j) * Ci + ci) * Co + co, u[j]);
      }
    }
  }
  for (int b = 0; b < c->B; b++) {
    for (int ty0 = 0; ty0 < TH; ty0 += rows) {
      const int nr = min_i(rows, TH - ty0), nt = nr * T;
      winograd_input(c, x, b, ty0, nr, T, V);
      /* M[k] = V[k] U[k]: 4x8 register tiles over ci, leftover tiles one at a time. */
      for (int k = 0; k < 16; k++) {
        const float *Vk = V + k * nt * Ci, *Uk = U + k * Ci * Co;
        float *Mk = M + k * nt * Co;
        int t = 0;
        for (; t + 4 <= nt; t += 4) {
          for (int co = 0; co < Co; co += 8) {
            Tile acc;
            for (int i = 0; i < 8; i++) acc.r[i] = zero;
            const float *vp = Vk + t * Ci, *up = Uk + co;
            for (int ci = 0; ci < Ci; ci++, vp++, up += Co) acc = tile_madd(acc, vp, Ci, up);
            tile_store(Mk + t * Co + co, Co, acc);
          }
        }
        for (; t < nt; t++) {
          for (int co = 0; co < Co; co += 8) {
            Row acc = {zero, zero};
            const float *vp = Vk + t * Ci, *up = Uk + co;
            for (int ci = 0; ci < Ci; ci++, vp++, up += Co) acc = row_madd(acc, vp, up);
            row_store(Mk + t * Co + co, acc);
          }
        }
      }
      /* Y = A^T m A, plus bias and relu, for the outputs inside the image. */
      for (int r = 0; r < nr; r++) {
        const int oy0 = 2 * (ty0 + r);
        for (int tx = 0; tx < T; tx++) {
          const int ox0 = 2 * tx, t = r * T + tx;
          for (int co = 0; co < Co; co += 4) {
            v128_t m[4][4], f[2][4];
            for (int i = 0; i < 4; i++)
              for (int j = 0; j < 4; j++) m[i][j] = wasm_v128_load(M + ((i * 4 + j) * nt + t) * Co + co);
            for (int j = 0; j < 4; j++) {
              f[0][j] = wasm_f32x4_add(wasm_f32x4_add(m[0][j], m[1][j]), m[2][j]);
              f[1][j] = wasm_f32x4_sub(wasm_f32x4_sub(m[1][j], m[2][j]), m[3][j]);
            }
            const v128_t bv = bias ? wasm_v128_load(bias + co) : zero;
            for (int i = 0; i < 2; i++) {
              const int oy = oy0 + i;
              if (oy >= oH) break;
              v128_t out[2] = {
                  wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(f[i][0], f[i][1]), f[i][2]), bv),
                  wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_sub(f[i][1], f[i][2]), f[i][3]), bv),
              };
              for (int j = 0; j < 2; j++) {
                const int ox = ox0 + j;
                if (ox >= oW) break;
                v128_t v = out[j];
                if (relu) v = wasm_f32x4_max(v, zero);
                wasm_v128_store(y + ((b * oH + oy) * oW + ox) * Co + co, v);
              }
            }
          }
        }
      }
    }
  }
}

/*
 * The filter gradient of the convolutions conv2d_winograd runs, by the same algorithm transposed,
 * F(3x3, 2x2): with Z a 2x2 block of dy and d the 4x4 input patch it reads from,
 *   dw += G^T [(A Z A^T) . (B^T d B)] G      (A, B, G as in conv2d_winograd),
 * so the sum over tiles becomes 16 GEMMs, W^[k][ci][co] += sum over t of V[k][t][ci] * Z^[k][t][co],
 * over `rows` tile rows at a time, and one inverse transform at the end. dw is written. Scratch:
 * 16*Ci*Co floats for W^, then 16*rows*T*(Ci + Co) for V and Z^, T = ceil(oW / 2).
 */
__attribute__((export_name("conv2d_backprop_filter_winograd")))
void conv2d_backprop_filter_winograd(const Conv *c, const float *x, const float *dy, float *dwt,
                                     float *scratch, int rows) {
  const int Ci = c->Ci, Co = c->Co, oH = c->oH, oW = c->oW;
  const int T = (oW + 1) / 2, TH = (oH + 1) / 2;
  float *Wh = scratch;
  float *V = Wh + 16 * Ci * Co;
  float *Z = V + 16 * rows * T * Ci;
  const v128_t half = wasm_f32x4_splat(0.5f), zero = wasm_f32x4_splat(0);
  for (int i = 0; i < 16 * Ci * Co; i += 4) wasm_v128_store(Wh + i, zero);
  for (int b = 0; b < c->B; b++) {
    for (int ty0 = 0; ty0 < TH; ty0 += rows) {
      const int nr = min_i(rows, TH - ty0), nt = nr * T;
      winograd_input(c, x, b, ty0, nr, T, V);
      /* Z^ = A Z A^T for every 2x2 block of dy (zeros past its edge), four co at a time. */
      for (int r = 0; r < nr; r++) {
        const int oy0 = 2 * (ty0 + r);
        for (int tx = 0; tx < T; tx++) {
          const int ox0 = 2 * tx, t = r * T + tx;
          for (int co = 0; co < Co; co += 4) {
            v128_t z[2][2], p[4][2];
            for (int i = 0; i < 2; i++)
              for (int j = 0; j < 2; j++)
                z[i][j] = oy0 + i < oH && ox0 + j < oW
                              ? wasm_v128_load(dy + ((b * oH + oy0 + i) * oW + ox0 + j) * Co + co)
                              : zero;
            for (int j = 0; j < 2; j++) {
              p[0][j] = z[0][j];
              p[1][j] = wasm_f32x4_add(z[0][j], z[1][j]);
              p[2][j] = wasm_f32x4_sub(z[0][j], z[1][j]);
              p[3][j] = wasm_f32x4_neg(z[1][j]);
            }
            for (int i = 0; i < 4; i++) {
              float *zp = Z + ((i * 4) * nt + t) * Co + co;
              const int step = nt * Co;
              wasm_v128_store(zp, p[i][0]);
              wasm_v128_store(zp + step, wasm_f32x4_add(p[i][0], p[i][1]));
              wasm_v128_store(zp + 2 * step, wasm_f32x4_sub(p[i][0], p[i][1]));
              wasm_v128_store(zp + 3 * step, wasm_f32x4_neg(p[i][1]));
            }
          }
        }
      }
      /* W^[k] += V[k]^T Z^[k]: 4x8 (ci x co) register tiles over the tiles. */
      for (int k = 0; k < 16; k++) {
        const float *Vk = V + k * nt * Ci, *Zk = Z + k * nt * Co;
        float *Wk = Wh + k * Ci * Co;
        for (int ci = 0; ci < Ci; ci += 4) {
          for (int co = 0; co < Co; co += 8) {
            Tile acc = tile_load(Wk + ci * Co + co, Co);
            const float *vp = Vk + ci, *zp = Zk + co;
            for (int t = 0; t < nt; t++, vp += Ci, zp += Co) acc = tile_madd(acc, vp, 1, zp);
            tile_store(Wk + ci * Co + co, Co, acc);
          }
        }
      }
    }
  }
  /* dw = G^T W^ G for every (ci, co), four co at a time. */
  for (int ci = 0; ci < Ci; ci++) {
    for (int co = 0; co < Co; co += 4) {
      v128_t m[4][4], n[3][4];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) m[i][j] = wasm_v128_load(Wh + ((i * 4 + j) * Ci + ci) * Co + co);
      for (int j = 0; j < 4; j++) {
        const v128_t s = wasm_f32x4_mul(half, wasm_f32x4_add(m[1][j], m[2][j]));
        n[0][j] = wasm_f32x4_add(m[0][j], s);
        n[1][j] = wasm_f32x4_mul(half, wasm_f32x4_sub(m[1][j], m[2][j]));
        n[2][j] = wasm_f32x4_add(s, m[3][j]);
      }
      for (int i = 0; i < 3; i++) {
        const v128_t s = wasm_f32x4_mul(half, wasm_f32x4_add(n[i][1], n[i][2]));
        float *d = dwt + (i * 3 * Ci + ci) * Co + co;
        wasm_v128_store(d, wasm_f32x4_add(n[i][0], s));
        wasm_v128_store(d + Ci * Co, wasm_f32x4_mul(half, wasm_f32x4_sub(n[i][1], n[i][2])));
        wasm_v128_store(d + 2 * Ci * Co, wasm_f32x4_add(s, n[i][3]));
      }
    }
  }
}
