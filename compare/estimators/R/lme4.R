# lme4::lmer / glmer (compare/estimators/lme4.py): the fit and everything read from it, with the Wald,
# ddf and bootstrap intervals of lme4_intervals.R.

fit_lme4 <- function(formula, data, family, link, reml, optimizer, profile, level, ddf, bootstrap, seed,
                     sd_tol, cor_tol, robust) {
  msgs <- character(0)
  keep_w <- function(w) { msgs <<- c(msgs, paste0("warning: ", conditionMessage(w))); invokeRestart("muffleWarning") }
  keep_m <- function(m) { msgs <<- c(msgs, paste0("message: ", trimws(conditionMessage(m)))); invokeRestart("muffleMessage") }
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(
    if (family == "gaussian") lme4::lmer(as.formula(formula), data = data, REML = reml)
    else if (family == "negbinomial") lme4::glmer.nb(as.formula(formula), data = data,
                                                     control = lme4::glmerControl(optimizer = optimizer))
    else lme4::glmer(as.formula(formula), data = data, family = get(family)(link = link),
                     control = lme4::glmerControl(optimizer = optimizer)),
    warning = keep_w, message = keep_m)
  wall <- proc.time()[["elapsed"]] - t0
  # refit() (bootMer) re-evaluates the call's control in its own frame, where `optimizer` does not exist
  if (family != "gaussian") fit@call$control <- lme4::glmerControl(optimizer = optimizer)
  vc <- lme4::VarCorr(fit)
  cnms <- lme4::getME(fit, "cnms")
  re <- as.data.frame(lme4::ranef(fit, condVar = TRUE))
  prof <- NULL
  prof_msgs <- character(0)
  if (profile) {
    prof <- tryCatch(withCallingHandlers(
        confint(fit, parm = "theta_", level = level, method = "profile", oldNames = FALSE, quiet = TRUE),
        warning = function(w) { prof_msgs <<- c(prof_msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { prof_msgs <<- c(prof_msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") }),
      error = function(e) { prof_msgs <<- c(prof_msgs, paste("error:", conditionMessage(e))); NULL })
  }
  conv <- fit@optinfo$conv
  out <- list(reml = lme4::isREML(fit), fixef = lme4::fixef(fit), fixef_names = names(lme4::fixef(fit)),
       vcov = as.matrix(vcov(fit)),
       vc = unname(lapply(vc, function(m) { m <- as.matrix(m); attr(m, "stddev") <- NULL; attr(m, "correlation") <- NULL; m })),
       cnms_groups = names(cnms), cnms = unname(cnms),
       sigma = sigma(fit), loglik = as.numeric(logLik(fit)), singular = lme4::isSingular(fit),
       optimizer = as.character(fit@optinfo$optimizer), opt_code = as.numeric(conv$opt),
       lme4_msgs = as.character(unlist(conv$lme4$messages)),
       ranef = re, fitted = as.numeric(fitted(fit)),
       profile = if (is.null(prof)) NULL else as.matrix(prof),
       profile_names = if (is.null(prof)) character(0) else rownames(prof),
       profile_msgs = prof_msgs, msgs = msgs, wall = wall,
       nb_theta = if (family == "negbinomial") lme4::getME(fit, "glmer.nb.theta") else NA_real_)
  # after everything is read from `fit`: these refit it or evaluate its deviance (on copies, but be safe);
  # a failure is a note on the fit, not a failed fit
  failed <- function(what) function(e) list(error = paste(what, "failed:", conditionMessage(e)))
  out$wald <- tryCatch(wald_se(fit, sd_tol, cor_tol), error = failed("Wald intervals"))
  out$nb <- if (family == "negbinomial")
    tryCatch(nb_theta_se(fit, formula, data, optimizer), error = failed("the Wald interval of phi")) else NULL
  out$ddf <- if (length(ddf) > 0 && lme4::isLMM(fit)) ddf_intervals(fit, ddf) else NULL
  out$cr2 <- if (robust && lme4::isLMM(fit) && length(lme4::fixef(fit)) > 0)
    tryCatch(cr2_intervals(fit), error = failed("CR2 (clubSandwich)")) else NULL
  out$boot <- if (bootstrap > 0) tryCatch(boot_intervals(fit, bootstrap, seed, level), error = failed("bootstrap")) else NULL
  out
}
