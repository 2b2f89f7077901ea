# R's version string and the version of each package named on the command line ("missing" when it is not
# installed), separated by "|": compare/provenance.py runs this file with Rscript (no embedded R needed).
packages <- commandArgs(trailingOnly = TRUE)
versions <- vapply(packages, function(p) tryCatch(as.character(packageVersion(p)), error = function(e) "missing"), "")
cat(R.version.string, versions, sep = "|")
