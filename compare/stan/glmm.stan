// hbench's generic GLMM, one program for every scenario (like rstanarm's precompiled programs):
// fixed effects X and any number of random-effect blocks arrive as data, so one compile serves all.
// Families: 1 gaussian, 2 binomial (with trials), 3 poisson, 4 negative binomial (NB2: mean mu, variance
// mu + mu^2 / phi, Stan's neg_binomial_2).  Links: 1 identity, 2 logit, 3 probit,
// 4 cloglog, 5 log.  Group effects are non-centred: r_k = z_k * diag(sd_k) * L_k' (J_k x q_k), stored in
// r term-major (column-major), so each term's effects are one contiguous segment gathered by level.
// Correlation Cholesky factors of different sizes cannot be declared as one ragged parameter, so each
// block's factor is built from unconstrained canonical partial correlations (Stan's own transform for
// cholesky_factor_corr, Jacobian added by hand) and gets the LKJ prior.
// The intercept's prior is on the centred intercept (brms's and rstanarm's `Intercept`) or, for `b[Intercept]`
// priors (a scenario's), on the intercept of the data's own scale.
// Known measurement SDs (brms's y | se(s), gaussian): se_mode 1 replaces sigma by se_n (no sigma parameter),
// se_mode 2 adds them to it, y_n ~ normal(mu_n, sqrt(sigma^2 + se_n^2)).
// Prior distributions by code (compare.priors.DISTS), one code per coefficient and per SD; a uniform prior on
// sigma or an SD bounds the parameter to its interval (the bounds are data).
// Covariance priors: rstanarm's decov (Gamma on tau, Dirichlet via Gamma(conc, 1) on variance shares,
// SDs = dispersion * tau * scale * sqrt(q * pi)) or brms's separate half priors on the SDs.
functions {
  int npairs(int q) {
    return (q * (q - 1)) %/% 2;
  }
  real hb_prior_lpdf(real x, int d, vector p) {
    if (d == 1) return normal_lpdf(x | p[1], p[2]);
    if (d == 2) return student_t_lpdf(x | p[1], p[2], p[3]);
    if (d == 3) return cauchy_lpdf(x | p[1], p[2]);
    if (d == 4) return exponential_lpdf(x | p[1]);
    if (d == 5) return gamma_lpdf(x | p[1], p[2]);
    if (d == 8) return uniform_lpdf(x | p[1], p[2]);
    if (d == 9) return inv_gamma_lpdf(x | p[1], p[2]);
    if (d == 10) return lognormal_lpdf(x | p[1], p[2]);
    reject("hb_prior_lpdf: unknown distribution code ", d);
  }
  vector obs_sd(vector se, vector sigma) {
    if (num_elements(sigma) == 0) return se;
    return sqrt(square(sigma[1]) + square(se));
  }
  matrix cpc_chol(vector y, int q) {
    matrix[q, q] L = rep_matrix(0, q, q);
    vector[num_elements(y)] c = tanh(y);
    int k = 1;
    L[1, 1] = 1;
    for (i in 2:q) {
      real s = 0;
      for (j in 1:(i - 1)) {
        L[i, j] = c[k] * sqrt(1 - s);
        s += square(L[i, j]);
        k += 1;
      }
      L[i, i] = sqrt(1 - s);
    }
    return L;
  }
  real cpc_logjac(vector y, int q) {
    vector[num_elements(y)] c = tanh(y);
    real lj = sum(log1m(square(c)));
    int k = 1;
    for (i in 2:q) {
      real s = 0;
      for (j in 1:(i - 1)) {
        if (j > 1) lj += 0.5 * log1m(s);
        s += square(c[k] * sqrt(1 - s));
        k += 1;
      }
    }
    return lj;
  }
}
data {
  int<lower=1, upper=4> family;
  int<lower=1, upper=5> link;
  int<lower=0> N;
  int<lower=0> P;
  int<lower=0, upper=1> has_intercept;
  matrix[N, P] Xc;
  vector[P] xbar;
  vector[N] off;
  vector[family == 1 ? N : 0] y_real;
  int<lower=0, upper=2> se_mode;  // 0: no known SEs; 1: se alone; 2: se and sigma
  vector<lower=0>[se_mode > 0 ? N : 0] se;
  array[family == 1 ? 0 : N] int<lower=0> y_int;
  array[family == 2 ? N : 0] int<lower=0> trials;
  int<lower=0> K;
  array[K] int<lower=1> q;
  array[K] int<lower=1> J;
  array[K] int<lower=0, upper=1> correlated;
  int<lower=0> Q;
  matrix[N, Q] Z;
  array[N, K] int<lower=1> gidx;
  int<lower=0> R;
  int<lower=0> NCPC;
  int<lower=0> NZETA;
  array[P] int<lower=0> b_code;  // one distribution code per coefficient (compare.priors.DISTS)
  matrix[P, 3] b_par;
  int<lower=0> int_code;
  vector[3] int_par;
  int<lower=0, upper=1> int_uncentred;  // the intercept prior is on alpha - xbar . beta (the data's scale)
  int<lower=0> sigma_code;
  vector[3] sigma_par;
  int<lower=0> phi_code;  // negbinomial's dispersion prior (a half distribution, like sigma's)
  vector[3] phi_par;
  real<lower=0> sigma_lower;  // sigma's support: (0, inf) unless its prior is uniform
  real<lower=sigma_lower> sigma_upper;
  int<lower=0, upper=1> separate;
  array[Q] int<lower=0> sd_code;
  matrix[Q, 3] sd_par;
  vector<lower=0>[separate == 1 ? Q : 0] sd_lower;  // each SD's support: (0, inf) unless its prior is uniform
  vector[separate == 1 ? Q : 0] sd_upper;
  real<lower=0> lkj_eta;
  vector<lower=0>[4] decov;
  int<lower=0> nonce;  // unused by the model: makes each request distinct to httpstan's fit cache
}
transformed data {
  real eta_lkj = separate == 1 ? lkj_eta : decov[1];
  array[K] int qs;
  array[K] int rs;
  array[K] int cs;
  array[K] int zs;
  // The intercept and every group term as one sparse N x (R + 1) matrix in CSR form, times (r, alpha): row n
  // holds block k's term t at column rs[k] + (t - 1) * J[k] + gidx[n, k] - 1, and a 1 in the last column when
  // there is an intercept.  One sparse product (a single autodiff node) instead of an N-vector operation per
  // term; with the *_glm likelihoods, which multiply Xc * beta themselves, that is all the per-row work.
  int QI = Q + has_intercept;
  int NZ = N * QI;
  vector[NZ] csr_w;
  array[NZ] int csr_v;
  array[N + 1] int csr_u;
  int use_glm = P > 0 && (family != 2 || link == 2);
  int has_off = N > 0 && max(abs(off)) > 0;
  {
    int a = 1;
    int b = 1;
    int c = 1;
    int d = 1;
    for (k in 1:K) {
      qs[k] = a;
      rs[k] = b;
      cs[k] = c;
      zs[k] = d;
      a += q[k];
      b += q[k] * J[k];
      if (correlated[k] == 1) c += npairs(q[k]);
      if (q[k] > 1) d += q[k];
    }
    for (n in 1:N) {
      int at = (n - 1) * QI;
      csr_u[n] = at + 1;
      for (k in 1:K)
        for (t in 1:q[k]) {
          csr_v[at + qs[k] + t - 1] = rs[k] + (t - 1) * J[k] + gidx[n, k] - 1;
          csr_w[at + qs[k] + t - 1] = Z[n, qs[k] + t - 1];
        }
      if (has_intercept == 1) {
        csr_v[at + QI] = R + 1;
        csr_w[at + QI] = 1;
      }
    }
    csr_u[N + 1] = NZ + 1;
  }
}
parameters {
  vector[has_intercept] alpha;
  vector[P] beta;
  vector<lower=sigma_lower, upper=sigma_upper>[family == 1 && se_mode != 1 ? 1 : 0] sigma;
  vector<lower=0>[family == 4 ? 1 : 0] phi;
  vector[R] z;
  vector[NCPC] cpc;
  vector<lower=sd_lower, upper=sd_upper>[separate == 1 ? Q : 0] sd_sep;
  vector<lower=0>[separate == 1 ? 0 : K] tau;
  vector<lower=0>[separate == 1 ? 0 : NZETA] zeta;
}
transformed parameters {
  vector[Q] sds;
  vector[R] r;
  {
    real disp = num_elements(sigma) == 1 ? sigma[1] : 1.0;
    for (k in 1:K) {
      int nq = q[k];
      matrix[nq, nq] L = diag_matrix(rep_vector(1, nq));
      if (separate == 1) {
        sds[qs[k]:(qs[k] + nq - 1)] = sd_sep[qs[k]:(qs[k] + nq - 1)];
      } else if (nq == 1) {
        sds[qs[k]] = disp * tau[k] * decov[4];
      } else {
        vector[nq] pi = zeta[zs[k]:(zs[k] + nq - 1)];
        pi /= sum(pi);
        sds[qs[k]:(qs[k] + nq - 1)] = disp * tau[k] * decov[4] * sqrt(nq * pi);
      }
      if (correlated[k] == 1 && nq > 1)
        L = cpc_chol(cpc[cs[k]:(cs[k] + npairs(nq) - 1)], nq);
      r[rs[k]:(rs[k] + nq * J[k] - 1)] = to_vector(
        to_matrix(z[rs[k]:(rs[k] + nq * J[k] - 1)], J[k], nq)
        * diag_pre_multiply(sds[qs[k]:(qs[k] + nq - 1)], L)');
    }
  }
}
model {
  // eta0: everything but the fixed slopes, which the *_glm likelihoods multiply in themselves
  vector[N] eta0 = QI > 0 ? csr_matrix_times_vector(N, R + has_intercept, csr_w, csr_v, csr_u, append_row(r, alpha))
                          : rep_vector(0, N);
  if (has_off == 1) eta0 += off;
  if (has_intercept == 1) {
    // (alpha, beta) -> (alpha - xbar . beta, beta) has unit Jacobian: the density goes on either directly
    target += hb_prior_lpdf((int_uncentred == 1 ? alpha[1] - dot_product(xbar, beta) : alpha[1]) | int_code, int_par);
  }
  for (p in 1:P) target += hb_prior_lpdf(beta[p] | b_code[p], b_par[p]');
  if (num_elements(sigma) == 1) target += hb_prior_lpdf(sigma[1] | sigma_code, sigma_par);
  if (family == 4) target += hb_prior_lpdf(phi[1] | phi_code, phi_par);
  for (k in 1:K) {
    int nq = q[k];
    if (correlated[k] == 1 && nq > 1) {
      vector[npairs(nq)] y = cpc[cs[k]:(cs[k] + npairs(nq) - 1)];
      target += cpc_logjac(y, nq) + lkj_corr_cholesky_lpdf(cpc_chol(y, nq) | eta_lkj);
    }
  }
  z ~ std_normal();
  if (separate == 1) {
    for (i in 1:Q) target += hb_prior_lpdf(sd_sep[i] | sd_code[i], sd_par[i]');
  } else {
    tau ~ gamma(decov[3], 1);
    zeta ~ gamma(decov[2], 1);
  }
  if (use_glm == 1) {
    if (family == 1 && se_mode > 0) target += normal_id_glm_lupdf(y_real | Xc, eta0, beta, obs_sd(se, sigma));
    else if (family == 1) target += normal_id_glm_lupdf(y_real | Xc, eta0, beta, sigma[1]);
    else if (family == 2) target += binomial_logit_glm_lupmf(y_int | trials, Xc, eta0, beta);
    else if (family == 3) target += poisson_log_glm_lupmf(y_int | Xc, eta0, beta);
    else target += neg_binomial_2_log_glm_lupmf(y_int | Xc, eta0, beta, phi[1]);
  } else {
    vector[N] eta = P > 0 ? eta0 + Xc * beta : eta0;
    if (family == 1 && se_mode > 0) {
      y_real ~ normal(eta, obs_sd(se, sigma));
    } else if (family == 1) {
      y_real ~ normal(eta, sigma[1]);
    } else if (family == 2) {
      if (link == 2) y_int ~ binomial_logit(trials, eta);
      else if (link == 3) y_int ~ binomial(trials, Phi(eta));
      else y_int ~ binomial(trials, inv_cloglog(eta));
    } else if (family == 3) {
      y_int ~ poisson_log(eta);
    } else {
      y_int ~ neg_binomial_2_log(eta, phi[1]);
    }
  }
}
generated quantities {
  vector[P + has_intercept] b;
  vector[NCPC] cors;
  if (has_intercept == 1) b[1] = alpha[1] - dot_product(xbar, beta);
  b[(has_intercept + 1):(P + has_intercept)] = beta;
  for (k in 1:K) {
    if (correlated[k] == 1 && q[k] > 1) {
      int nq = q[k];
      matrix[nq, nq] C = multiply_lower_tri_self_transpose(
        cpc_chol(cpc[cs[k]:(cs[k] + npairs(nq) - 1)], nq));
      int m = cs[k];
      for (i in 1:(nq - 1)) for (j in (i + 1):nq) {
        cors[m] = C[i, j];
        m += 1;
      }
    }
  }
}
