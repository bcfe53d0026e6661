# mclust's VVE fits that emkit's exact EM from the same start does not reach, for
# tests/test_vve_starts.py.
#
# mclust's VVE M-step (Fortran `mevve`, MM steps of Browne & McNicholas) updates the
# orientation with every component weighted alike, where the exact step weighs
# component k by 1 / lambda_k (its volume): for VVE it is not the M-step, and from
# mclust's hierarchical start its EM reaches other (here better) maxima than the
# exact M-step. This script saves, for each case, the hc partition, mclust's fit
# with its default control (as mclustBIC runs it): log-likelihood, BIC, iterations
# and parameters. The data are those of tests/reference/mclust_hc.json.
#
# Run from the repository root:  Rscript tests/reference/mclust_vve.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

source("tests/reference/mclust_hc_data.R")  # data_of(name)

cases <- list(list("iris", 5), list("diabetes", 8), list("banknote", 5), list("banknote", 7))
out <- lapply(cases, function(case) {
  X <- data_of(case[[1]])
  G <- case[[2]]
  cl <- as.vector(hclass(hc(X, modelName = "VVV", use = "SVD"), G))
  fit <- me(modelName = "VVE", data = X, z = unmap(cl))  # emControl() defaults
  bic <- mclustBIC(X, G = G, modelNames = "VVE")[1, 1]
  sigma <- fit$parameters$variance$sigma
  list(
    data = case[[1]], G = G, cl = cl,
    loglik = fit$loglik, bic = bic, n_iter = unname(attr(fit, "info")[1]),
    pro = fit$parameters$pro,
    mean = t(fit$parameters$mean),                       # G x d
    sigma = lapply(seq_len(G), function(k) sigma[, , k])  # G matrices d x d
  )
})

result <- list(
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  control = "emControl() defaults: tol = c(1e-5, sqrt(.Machine$double.eps))",
  cases = out
)
writeLines(toJSON(result, digits = I(15), auto_unbox = TRUE, matrix = "rowmajor"),
           "tests/reference/mclust_vve.json")
