# What every R engine's code shares (compare/estimators/_r.py sources this file once per process, into an
# environment that is the parent of every other file's, so these names are visible to all of them).

# Whether an R package loads, without its start-up messages or warnings reaching the console.
has_package <- function(package) {
  isTRUE(suppressWarnings(suppressPackageStartupMessages(requireNamespace(package, quietly = TRUE))))
}

# withCallingHandlers collectors: an engine's fit function records warnings and messages into `msgs`
# instead of printing them, so they land in FitResult.warnings.
collector <- function() {
  env <- new.env()
  env$msgs <- character(0)
  env$warning <- function(w) { env$msgs <- c(env$msgs, paste0("warning: ", conditionMessage(w))); invokeRestart("muffleWarning") }
  env$message <- function(m) { env$msgs <- c(env$msgs, paste0("message: ", trimws(conditionMessage(m)))); invokeRestart("muffleMessage") }
  env
}
