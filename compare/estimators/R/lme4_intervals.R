# Intervals of lme4 fits beyond lme4's own (compare/estimators/_lme4_intervals.py says how and why): Wald SEs
# of SDs, correlations and sigma from a numerical Hessian of the deviance, Satterthwaite / Kenward-Roger df
# for the fixed effects, and parametric bootstrap percentile intervals.

lmer_devfun <- function(fit) {
  # lme4's deviance of an lmer fit as a function of (SDs, cors, sigma) in Cv_to_Sv order, REML or ML as the
  # fit; like lme4:::devfun2 but without its refitML(), on copies of the fit's predictor and response.
  pp <- fit@pp$copy(); resp <- fit@resp$copy()
  vlist <- lengths(fit@cnms); reml <- lme4::isREML(fit)
  n <- nrow(pp$V); p <- ncol(pp$X); np <- length(pp$theta) + 1L
  ldW <- sum(log(resp$weights)); nn <- if (reml) n - p else n
  function(pars) {
    sigma <- pars[np]
    .Call(lme4:::lmer_Deviance, pp$ptr(), resp$ptr(), lme4:::Sv_to_Cv(pars, n = vlist, s = sigma))
    s2 <- sigma^2
    pp$ldL2() - ldW + (resp$wrss() + pp$sqrL(1)) / s2 + nn * log(2 * pi * s2) + (if (reml) pp$ldRX2() else 0)
  }
}

wald_se <- function(fit, sd_tol, cor_tol) {
  lmm <- lme4::isLMM(fit)
  vlist <- lengths(fit@cnms)
  scale <- if (lmm) sigma(fit) else 1
  if (lmm) {
    dev <- lmer_devfun(fit)
    opt <- suppressWarnings(lme4:::Cv_to_Sv(lme4::getME(fit, "theta"), n = vlist, s = scale))
  } else {
    # devfun2, like Cv_to_Sv above, warns "NA values in sdcor matrix converted to 0" at a zero SD (its
    # correlation is undefined); the fit reports that SD as var_at_zero, and R would print the warning at exit
    dev <- suppressWarnings(lme4:::devfun2(fit, useSc = FALSE))
    opt <- attr(dev, "optimum")  # SDs and cors, then the fixed effects
  }
  opt <- as.numeric(opt)
  kind <- character(0); status <- character(0); k <- 0L
  for (q in vlist) {
    pos <- matrix(0L, q, q)
    for (j in seq_len(q)) for (i in j:q) { k <- k + 1L; pos[i, j] <- k; kind[k] <- if (i == j) "sd" else "cor" }
    for (j in seq_len(q)) status[pos[j, j]] <- if (is.finite(opt[pos[j, j]]) && opt[pos[j, j]] > sd_tol * scale) "ok" else "sd-zero"
    for (j in seq_len(q)) for (i in j:q) if (i > j) {
      v <- opt[pos[i, j]]
      status[pos[i, j]] <- if (status[pos[i, i]] != "ok" || status[pos[j, j]] != "ok") "cor-undefined"
                           else if (!is.finite(v) || abs(v) > 1 - cor_tol) "cor-bound" else "ok"
      if (status[pos[i, j]] == "cor-undefined") opt[pos[i, j]] <- 0
    }
  }
  if (lmm) { k <- k + 1L; kind[k] <- "sd"; status[k] <- "ok" }
  nvar <- k
  kind <- c(kind, rep("beta", length(opt) - nvar))
  free <- c(status == "ok", rep(TRUE, length(opt) - nvar))
  fk <- kind[free]
  to_u <- function(x) { x[fk == "sd"] <- log(x[fk == "sd"]); x[fk == "cor"] <- atanh(x[fk == "cor"]); x }
  from_u <- function(u) { u[fk == "sd"] <- exp(u[fk == "sd"]); u[fk == "cor"] <- tanh(u[fk == "cor"]); u }
  f <- function(u) { x <- opt; x[free] <- from_u(u); dev(x) }
  se <- rep(NA_real_, nvar); note <- character(0)
  nfree <- sum(free[seq_len(nvar)])
  if (nfree > 0) {
    H <- tryCatch(suppressWarnings(numDeriv::hessian(f, to_u(opt[free]))), error = function(e) conditionMessage(e))
    if (is.character(H)) {
      note <- paste("the numerical Hessian of the deviance failed:", H)
    } else {
      H <- (H + t(H)) / 2
      ev <- if (all(is.finite(H))) eigen(H, symmetric = TRUE, only.values = TRUE)$values else NA_real_
      if (any(!is.finite(ev)) || min(ev) <= 1e-8 * max(abs(ev))) {
        note <- sprintf("the Hessian of the deviance is not positive definite (smallest eigenvalue %.3g)", min(ev))
      } else {
        se[free[seq_len(nvar)]] <- sqrt(diag(2 * solve(H)))[seq_len(nfree)]
      }
    }
  }
  list(est = opt[seq_len(nvar)], kind = kind[seq_len(nvar)], se_u = se, status = status, note = note)
}

ddf_intervals <- function(fit, methods) {
  out <- list(); msgs <- character(0)
  for (m in methods) {
    r <- tryCatch(withCallingHandlers({
      if (m == "satterthwaite") {
        cf <- summary(lmerTest::as_lmerModLmerTest(fit), ddf = "Satterthwaite")$coefficients
        list(se = unname(cf[, "Std. Error"]), df = unname(cf[, "df"]))
      } else {
        V0 <- as.matrix(vcov(fit)); Va <- pbkrtest::vcovAdj(fit)  # Va keeps the attributes Lb_ddf reads
        p <- ncol(V0)
        df <- vapply(seq_len(p), function(j) { L <- matrix(0, 1, p); L[j] <- 1; pbkrtest::Lb_ddf(L, V0, Va) }, 0)
        list(se = unname(sqrt(diag(as.matrix(Va)))), df = df)
      }
    }, warning = function(w) { msgs <<- c(msgs, paste0(m, ": ", conditionMessage(w))); invokeRestart("muffleWarning") },
       message = function(w) invokeRestart("muffleMessage")),
    error = function(e) { msgs <<- c(msgs, paste0(m, " failed: ", conditionMessage(e))); NULL })
    if (!is.null(r)) out[[m]] <- r
  }
  list(methods = names(out), values = unname(out), msgs = msgs)
}

# Cluster-robust CR2 standard errors of the fixed effects with Satterthwaite df (clubSandwich's coef_test),
# clustered on clubSandwich's default for lmer fits, the outermost grouping factor; laid out as
# ddf_intervals' result (one method, "cr2"), and the clustering factor's name.
cr2_intervals <- function(fit) {
  msgs <- character(0)
  ct <- withCallingHandlers(clubSandwich::coef_test(fit, vcov = "CR2", test = "Satterthwaite"),
    warning = function(w) { msgs <<- c(msgs, paste0("cr2: ", conditionMessage(w))); invokeRestart("muffleWarning") },
    message = function(m) invokeRestart("muffleMessage"))
  if (!identical(as.character(ct$Coef), names(lme4::fixef(fit)))) stop("coef_test's coefficients are not fixef's")
  list(methods = "cr2", values = list(list(se = unname(ct$SE), df = unname(ct$df_Satt))), msgs = msgs,
       cluster = names(lme4::getME(fit, "flist"))[which.min(lme4::getME(fit, "l_i"))])  # as clubSandwich picks it
}

boot_statistics <- function(fit) {
  lmm <- lme4::isLMM(fit)
  v <- suppressWarnings(lme4:::Cv_to_Sv(lme4::getME(fit, "theta"), n = lengths(fit@cnms), s = if (lmm) sigma(fit) else 1))
  if (!lmm) v <- v[seq_along(lme4::getME(fit, "theta"))]
  c(unname(lme4::fixef(fit)), as.numeric(v))
}

boot_intervals <- function(fit, nsim, seed, level) {
  nwarn <- 0L
  b <- withCallingHandlers(
    lme4::bootMer(fit, boot_statistics, nsim = nsim, seed = seed, type = "parametric", use.u = FALSE),
    warning = function(w) { nwarn <<- nwarn + 1L; invokeRestart("muffleWarning") },
    message = function(m) invokeRestart("muffleMessage"))
  t <- b$t
  nfe <- length(lme4::fixef(fit))
  ok <- apply(t, 1, function(r) all(is.finite(r[seq_len(nfe)])))
  a <- (1 - level) / 2
  q <- apply(t[ok, , drop = FALSE], 2, function(x) {
    x <- x[is.finite(x)]
    if (length(x) < 2) c(NA_real_, NA_real_, length(x)) else c(unname(quantile(x, c(a, 1 - a))), length(x)) })
  fail <- attr(b, "bootFail")
  list(lower = q[1, ], upper = q[2, ], n_used = q[3, ], nsim = nsim,
       failed = as.integer(if (is.null(fail)) sum(!ok) else fail), warnings = nwarn,
       fail_msgs = as.character(names(attr(b, "boot.fail.msgs"))))
}

# glmer.nb's theta (hbench's phi) with the SE of log(theta) from the curvature of the profile deviance: glmer
# refitted at theta * exp(+-h) (everything else re-optimised, from the fit's optimum), a central second
# difference on the log scale. glmer.nb itself gives theta without an SE (it maximises over theta by
# alternating with glmer fits); MASS::theta.ml's SE would hold the fitted means fixed.
nb_theta_se <- function(fit, formula, data, optimizer, h = 0.1) {
  theta <- lme4::getME(fit, "glmer.nb.theta")
  start <- list(theta = lme4::getME(fit, "theta"), fixef = lme4::fixef(fit))
  deviance_at <- function(t) {
    f <- suppressWarnings(suppressMessages(lme4::glmer(as.formula(formula), data = data,
      family = MASS::negative.binomial(theta = t), start = start,
      control = lme4::glmerControl(optimizer = optimizer, calc.derivs = FALSE))))
    -2 * as.numeric(logLik(f))
  }
  d0 <- -2 * as.numeric(logLik(fit))
  curv <- (deviance_at(theta * exp(h)) - 2 * d0 + deviance_at(theta * exp(-h))) / h^2
  note <- if (is.finite(curv) && curv > 0) character(0) else
    sprintf("the profile deviance of log(phi) is not convex at glmer.nb's estimate (curvature %.3g)", curv)
  list(theta = theta, se_log = if (length(note)) NA_real_ else sqrt(2 / curv), note = note)
}
