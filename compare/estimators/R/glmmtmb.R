# glmmTMB::glmmTMB (compare/estimators/glmmtmb.py): the fit, TMB's sdreport pieces behind the Wald intervals,
# and optional profile intervals of the theta parameters.

fit_glmmtmb <- function(formula, data, family, link, reml, profile, level) {
  h <- collector()
  fam <- if (family == "gaussian") gaussian()
         else if (family == "negbinomial") glmmTMB::nbinom2(link = link)  # NB2: variance mu + mu^2 / phi
         else get(family)(link = link)
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(glmmTMB::glmmTMB(as.formula(formula), data = data, family = fam, REML = reml),
                             warning = h$warning, message = h$message)
  wall <- proc.time()[["elapsed"]] - t0
  vc_msgs <- character(0)
  withCallingHandlers({
    par <- fit$sdr$par.fixed
    cov <- fit$sdr$cov.fixed
    vc <- glmmTMB::VarCorr(fit)$cond
    re <- as.data.frame(glmmTMB::ranef(fit, condVar = TRUE))
    k <- length(glmmTMB::fixef(fit)$cond)  # vcov() is NULL without fixed effects
    # vcov() inverts the Hessian, singular at some boundary fits: the fit is kept, its fixed effects' SEs NA
    V <- if (k == 0) matrix(numeric(0), 0, 0) else tryCatch(as.matrix(vcov(fit)$cond), error = function(e) {
      vc_msgs <<- paste("fixed-effect covariance not computed:", conditionMessage(e))
      matrix(NA_real_, k, k)
    })
  }, warning = h$warning, message = h$message)
  th <- which(names(par) == "theta")
  bd <- which(names(par) == "betad")
  struc <- fit$modelInfo$reStruc$condReStruc
  prof <- NULL
  prof_msgs <- character(0)
  if (profile && !reml) {
    prof <- tryCatch(withCallingHandlers(
        as.matrix(confint(fit, parm = "theta_", level = level, method = "profile"))[, 1:2, drop = FALSE],
        warning = function(w) { prof_msgs <<- c(prof_msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { prof_msgs <<- c(prof_msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") }),
      error = function(e) { prof_msgs <<- c(prof_msgs, paste("error:", conditionMessage(e))); NULL })
  }
  cnms <- fit$modelInfo$reTrms$cond$cnms
  list(fixef = glmmTMB::fixef(fit)$cond, fixef_names = names(glmmTMB::fixef(fit)$cond), vcov = V,
       vc = unname(lapply(vc, function(m) { m <- as.matrix(m); attr(m, "stddev") <- NULL; attr(m, "correlation") <- NULL; m })),
       cnms_groups = names(cnms), cnms = unname(cnms),
       theta = unname(par[th]), theta_cov = unname(cov[th, th, drop = FALSE]),
       n_theta = unname(sapply(struc, function(s) s$blockNumTheta)),
       block_codes = unname(sapply(struc, function(s) names(s$blockCode))),
       betad = if (length(bd)) unname(par[bd]) else NULL, betad_var = if (length(bd)) unname(cov[bd, bd]) else NULL,
       sigma = sigma(fit), loglik = -as.numeric(fit$fit$objective), pdHess = isTRUE(fit$sdr$pdHess),
       opt_code = as.numeric(fit$fit$convergence), opt_message = as.character(fit$fit$message),
       ranef = re, fitted = as.numeric(fitted(fit)), profile = prof, profile_msgs = prof_msgs,
       msgs = c(h$msgs, vc_msgs), wall = wall)
}
