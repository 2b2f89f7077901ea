# rstanarm::stan_glmer (compare/estimators/rstanarm.py): the draws per chain, the sampler's diagnostics and
# rstanarm's description of the priors it used.

# `priors`: a named list, by stan_glmer argument (prior, prior_intercept, prior_aux, prior_covariance), of
# list(fun = an rstanarm prior function's name, args = its named arguments, numbers or numeric vectors);
# arguments not given keep rstanarm's defaults.
fit_rstanarm <- function(formula, data, family, link, chains, iter, warmup, adapt_delta, max_treedepth,
                         QR, cores, seed, priors) {
  h <- collector()
  fam <- if (family == "gaussian") gaussian()
         else if (family == "negbinomial") rstanarm::neg_binomial_2(link = link)  # reciprocal_dispersion = phi
         else get(family)(link = link)
  # open_progress: R embedded by rpy2 is interactive(), so rstan would open a browser page when cores > 1
  args <- list(formula = as.formula(formula), data = data, family = fam, chains = chains, iter = iter,
               warmup = warmup, adapt_delta = adapt_delta, control = list(max_treedepth = max_treedepth),
               QR = QR, cores = cores, seed = seed, refresh = 0, open_progress = FALSE)
  # prior_aux is sigma's (gaussian) or phi's (negbinomial, given as prior_aux_phi): the family's own one
  aux <- if (family == "negbinomial") "prior_aux_phi" else "prior_aux"
  for (a in setdiff(names(priors), setdiff(c("prior_aux", "prior_aux_phi"), aux)))
    args[[if (a == aux) "prior_aux" else a]] <- do.call(getExportedValue("rstanarm", priors[[a]]$fun),
                                                        as.list(priors[[a]]$args))
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(do.call(rstanarm::stan_glmer, args), warning = h$warning, message = h$message)
  wall <- proc.time()[["elapsed"]] - t0
  a <- as.array(fit)
  used <- rstanarm::prior_summary(fit)
  prior_text <- capture.output(print(used))
  list(draws = unname(a), names = dimnames(a)[[3]], sampler = sampler_params(fit$stanfit),
       control = fit$stanfit@stan_args[[1]]$control, prior_text = prior_text, wall = wall, msgs = h$msgs,
       prior_used = lapply(unclass(used), function(e) if (is.list(e)) lapply(e, function(v) if (is.null(v)) NULL else v) else e),
       fixef_names = names(rstanarm::fixef(fit)))
}
