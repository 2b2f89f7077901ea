# brms::brm (compare/estimators/brms.py): one compile per generated Stan program in this process, refitted on
# each dataset with its own default priors passed as data (stanvars); draws by name from brms's accessors.

# Debian's r-cran-bh ships no headers: point rstan at the system's Boost (FINDINGS)
if (!dir.exists(file.path(system.file(package = "BH"), "include", "boost")) && dir.exists("/usr/include/boost"))
  rstan::rstan_options(boost_lib = "/usr/include")
# the compiled models of this process, by Stan code
store <- new.env()
store$models <- list()

# brms's default priors for the data-dependent classes, with their numbers passed as data (stanvars), so the
# generated Stan code does not change from one dataset to the next; the user's priors as given, one per element
# of `user` (a list of character vectors: prior, class, coef, group, lb, ub; "" for none; coef in hbench's
# naming, renamed here as brms names coefficients).
brms_priors <- function(f, data, fam, user) {
  defaults <- brms::get_prior(f, data = data, family = fam)
  prior <- brms::empty_prior()
  rename <- utils::getFromNamespace("rename", "brms")
  na <- function(x) if (identical(x, "")) NA else as.numeric(x)
  class_level <- character(0)
  for (k in seq_along(user$prior)) {
    coef <- if (user$coef[k] == "") "" else rename(user$coef[k])
    prior <- prior + brms::set_prior(user$prior[k], class = user$class[k], coef = coef, group = user$group[k],
                                     lb = na(user$lb[k]), ub = na(user$ub[k]))
    if (user$coef[k] == "" && user$group[k] == "") class_level <- c(class_level, user$class[k])
  }
  sv <- NULL
  text <- if (length(user$prior)) paste(user$label, "~", user$prior) else character(0)
  shape <- defaults$prior[defaults$class == "shape" & defaults$coef == "" & defaults$prior != ""]
  if (length(shape) && !("shape" %in% class_level))  # not data-dependent: stays in the code as brms writes it
    text <- c(text, paste("shape (hbench's phi) ~", shape[1], "(brms default)"))
  rows <- defaults[defaults$coef == "" & defaults$group == "" & defaults$resp == "" & defaults$dpar == "" &
                   defaults$nlpar == "" & defaults$prior != "" & defaults$class %in% c("Intercept", "sigma", "sd") &
                   !(defaults$class %in% class_level), ]
  for (i in seq_len(nrow(rows))) {
    cls <- rows$class[i]
    m <- regmatches(rows$prior[i], regexec("^([A-Za-z_]+)\\((.*)\\)$", rows$prior[i]))[[1]]
    args <- trimws(strsplit(m[3], ",")[[1]])
    vals <- suppressWarnings(as.numeric(args))
    if (length(m) != 3 || any(is.na(vals))) stop("cannot read brms's default prior '", rows$prior[i], "' for class ", cls)
    nms <- paste0("hb_", cls, "_", seq_along(vals))
    for (k in seq_along(vals)) sv <- if (is.null(sv)) brms::stanvar(vals[k], name = nms[k]) else sv + brms::stanvar(vals[k], name = nms[k])
    prior <- prior + brms::set_prior(paste0(m[2], "(", paste(nms, collapse = ", "), ")"), class = cls)
    text <- c(text, paste(cls, "~", rows$prior[i], "(brms default)"))
  }
  list(prior = prior, stanvars = sv, text = text)
}

# prior_summary(fit) as columns of strings (hb_* stanvar names are replaced by their values in Python)
prior_table <- function(fit) {
  ps <- as.data.frame(brms::prior_summary(fit))
  cols <- c("prior", "class", "coef", "group", "lb", "ub", "source")
  lapply(stats::setNames(cols, cols), function(k) as.character(ifelse(is.na(ps[[k]]), "", ps[[k]])))
}

# The priors brms would fit with, read back from an unsampled model (brm(empty = TRUE): no compile), built
# exactly as fit_brms builds them: what the prior corpus test compares with each request.
brms_prior_check <- function(formula, data, family, link, user, terms) {
  fam <- if (family == "gaussian") gaussian() else get(family)(link = link)
  f <- brms::brmsformula(as.formula(formula))
  pri <- brms_priors(f, data, fam, user)
  fit <- brms::brm(f, data = data, family = fam, prior = pri$prior, stanvars = pri$stanvars, empty = TRUE)
  list(priors = prior_table(fit), prior_data = stanvar_values(fit),
       terms = utils::getFromNamespace("rename", "brms")(terms))
}

compiled_fit <- function(code) {
  for (m in store$models) if (identical(m$code, code)) return(m$fit)
  NULL
}

forget_compiled <- function() { store$models <- list(); invisible(NULL) }

fit_brms <- function(formula, data, family, link, user, chains, iter, warmup,
                     adapt_delta, max_treedepth, cores, seed, terms) {
  h <- collector()
  fam <- if (family == "gaussian") gaussian()
         else if (family == "negbinomial") brms::negbinomial(link = link)  # shape = NB2's phi
         else get(family)(link = link)
  f <- brms::brmsformula(as.formula(formula))
  t0 <- proc.time()[["elapsed"]]
  withCallingHandlers({
    pri <- brms_priors(f, data, fam, user)
    code <- sub("^[^\n]+\n", "", brms::make_stancode(f, data = data, family = fam, prior = pri$prior, stanvars = pri$stanvars))
  }, warning = h$warning, message = h$message)
  prep_s <- proc.time()[["elapsed"]] - t0
  base <- compiled_fit(code)
  compile_s <- 0
  compiled <- is.null(base)
  if (compiled) {
    t0 <- proc.time()[["elapsed"]]
    base <- withCallingHandlers(brms::brm(f, data = data, family = fam, prior = pri$prior, stanvars = pri$stanvars,
                                          chains = 0, silent = 2, refresh = 0),
                                warning = h$warning, message = h$message)
    compile_s <- proc.time()[["elapsed"]] - t0
    store$models <- c(store$models, list(list(code = code, fit = base)))
  }
  # The program is this model's (same code), but the compiled fit may come from another formula generating the
  # same code (brms passes design columns as data: (1 | g) + (0 + x | g) and (1 | g1) + (1 | g1:g2) do), so
  # update() gets this formula and family, not the compiled fit's.
  # update() appends the compiled fit's user priors to the ones given, and brms refuses the near-duplicates
  # (they differ in filled-in bounds); the code identity above already guarantees the priors are these.
  base$prior <- base$prior[base$prior$source != "user", ]
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(
    update(base, formula. = f, family = fam, newdata = data, recompile = FALSE, prior = pri$prior,
           stanvars = pri$stanvars, chains = chains,
           iter = iter, warmup = warmup, cores = cores, seed = seed, refresh = 0, silent = 2, open_progress = FALSE,
           control = list(adapt_delta = adapt_delta, max_treedepth = max_treedepth)),
    warning = h$warning, message = h$message)
  wall <- proc.time()[["elapsed"]] - t0
  out <- brms_draws(fit, family, pri, compiled, compile_s, prep_s, wall, h$msgs)
  out$terms <- utils::getFromNamespace("rename", "brms")(terms)  # brms's own names: Age25-34 -> Age25M34
  out
}

# Draws by name from brms's accessors (original level labels), stacked chain after chain; the stacking is
# checked against as.array's (iteration, chain) layout so the per-chain R-hat/ESS are computed on real chains.
stanvar_values <- function(fit) {
  sd <- brms::standata(fit)
  keep <- grep("^hb_", names(sd), value = TRUE)
  list(names = keep, values = as.numeric(unlist(sd[keep])))
}

brms_draws <- function(fit, family, pri, compiled, compile_s, prep_s, wall, msgs) {
  vc <- brms::VarCorr(fit, summary = FALSE)
  re <- brms::ranef(fit, summary = FALSE)
  fe <- if (NROW(brms::fixef(fit)) > 0) brms::fixef(fit, summary = FALSE) else NULL  # NULL without fixed effects
  arr <- as.array(fit)
  g1 <- names(vc)[1]; t1 <- colnames(vc[[1]]$sd)[1]
  if (!isTRUE(all.equal(as.vector(vc[[1]]$sd[, 1]), as.vector(arr[, , paste0("sd_", g1, "__", t1)]))))
    stop("brms's VarCorr draws are not stacked chain after chain as expected")
  dn <- function(a, k) dimnames(a)[[k]]
  list(fixef = if (is.null(fe)) matrix(numeric(0), nrow(vc[[1]]$sd), 0) else unname(fe),
       fixef_names = if (is.null(fe)) character(0) else colnames(fe),
       groups = names(vc), sd = unname(lapply(vc, function(v) unname(v$sd))),
       sd_names = unname(lapply(vc, function(v) colnames(v$sd))),
       cor = unname(lapply(vc, function(v) if (is.null(v$cor)) array(0, c(nrow(v$sd), 1, 1)) else unname(v$cor))),
       r = unname(lapply(names(vc), function(g) unname(re[[g]]))),
       r_levels = unname(lapply(names(vc), function(g) dn(re[[g]], 2))),
       r_terms = unname(lapply(names(vc), function(g) dn(re[[g]], 3))),
       sigma = if ("sigma" %in% dimnames(arr)[[3]]) as.vector(arr[, , "sigma"]) else NULL,  # not with se() alone
       shape = if (family == "negbinomial") as.vector(arr[, , "shape"]) else NULL,
       sampler = sampler_params(fit$fit), prior_text = pri$text, priors = prior_table(fit),
       compiled = compiled, compile_s = compile_s, prep_s = prep_s, wall = wall, msgs = msgs,
       prior_data = stanvar_values(fit))
}
