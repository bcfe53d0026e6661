# mclust's EM paths for EVE and VVE from its hierarchical start, for
# tests/test_vve_starts.py (select_model's start along mclust's path).
#
# mclust's M-step for these models (Fortran `meeve`, `mevve`) turns the shared
# orientation by majorisation steps that start from the identity in the first
# M-step, and for VVE weigh every component alike (EVE's objective). From the same
# hc partition its EM therefore takes another path than the exact M-step, and at
# times ends higher. This script saves, for each case, the hc partition, mclust's
# log-likelihood after 1..6 EM iterations (`me` with `itmax` capped: the M-step
# from the partition, then that many E-steps) and its fit with the default control
# (as mclustBIC runs it): log-likelihood, iterations, BIC. The data are those of
# tests/reference/mclust_hc.json.
#
# Run from the repository root:  Rscript tests/reference/mclust_paths.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

source("tests/reference/mclust_hc_data.R")  # data_of(name)

cases <- list(list("wreath", "EVE", 8), list("chevron", "VVE", 8), list("iris", "VVE", 5),
              list("banknote", "VVE", 7))
out <- lapply(cases, function(case) {
  X <- data_of(case[[1]])
  model <- case[[2]]
  G <- case[[3]]
  cl <- as.vector(hclass(hc(X, modelName = "VVV", use = "SVD"), G))
  path <- sapply(1:6, function(it) {
    me(modelName = model, data = X, z = unmap(cl),
       control = emControl(itmax = c(it, .Machine$integer.max)))$loglik
  })
  fit <- me(modelName = model, data = X, z = unmap(cl))  # emControl() defaults
  list(
    data = case[[1]], model = model, G = G, cl = cl, path = path,
    loglik = fit$loglik, n_iter = unname(attr(fit, "info")[1]),
    bic = mclustBIC(X, G = G, modelNames = model)[1, 1]
  )
})

result <- list(
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  control = "emControl() defaults: tol = c(1e-5, sqrt(.Machine$double.eps))",
  cases = out
)
writeLines(toJSON(result, digits = I(15), auto_unbox = TRUE),
           "tests/reference/mclust_paths.json")
