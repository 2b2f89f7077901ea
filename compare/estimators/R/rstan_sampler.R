# rstan's per-chain sampler parameters after warm-up, as (draws x chains) matrices, and its chain times:
# what the R samplers (rstanarm.R, brms.R) share.
sampler_params <- function(stanfit) {
  sp <- rstan::get_sampler_params(stanfit, inc_warmup = FALSE)
  col <- function(name) sapply(sp, function(m) m[, name])
  t <- rstan::get_elapsed_time(stanfit)
  list(divergent = col("divergent__"), treedepth = col("treedepth__"), energy = col("energy__"),
       warmup_s = unname(t[, "warmup"]), sample_s = unname(t[, "sample"]))
}
