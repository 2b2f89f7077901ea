# `hbench data` (compare/realdata.py): a dataset that ships with an R package, as a plain data frame, with
# the package's version and licence for the cache's provenance. Ordered factors become plain factors with
# the same levels: every engine here codes factors by treatment contrasts (R would use polynomial ones).

load_dataset <- function(package, name) {
  e <- new.env()
  utils::data(list = name, package = package, envir = e)
  d <- as.data.frame(get(name, envir = e))
  class(d) <- "data.frame"  # nlme's groupedData and the like
  ordered <- names(d)[vapply(d, is.ordered, NA)]
  for (col in ordered) d[[col]] <- factor(as.character(d[[col]]), levels = levels(d[[col]]))
  list(data = d, version = as.character(utils::packageVersion(package)),
       licence = as.character(utils::packageDescription(package)$License),
       r_version = R.version.string, ordered = ordered)
}
