# Reference fits of mclust's 14 covariance models, for tests/test_mclust_models.py.
#
# For each data set and number of components G, a fixed hard partition `cl`
# (mclust's own hierarchical start, hclass(hc(X), G)) is saved with the data; every
# model is then fitted by mclust's EM from that partition, me(model, X, z = unmap(cl)),
# with tolerances tight enough that the fit sits at its fixed point. Also writes
# mclust's model choice on diabetes (mclustBIC over the 14 models, G = 1..9) and
# the partitions of mclust's EII (Ward) agglomeration with G = 3.
#
# Run from the repository root:  Rscript tests/reference/mclust_models.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE",
            "EEV", "VEV", "EVV", "VVV")
control <- emControl(tol = c(1e-12, 1e-14), itmax = c(100000L, 100000L))

data(diabetes, package = "mclust")
datasets <- list(
  iris = as.matrix(iris[, 1:4]),
  faithful = as.matrix(faithful),
  diabetes = as.matrix(diabetes[, -1])
)
sizes <- list(iris = c(2, 3), faithful = c(3), diabetes = c(3))

fit_one <- function(model, data, cl) {
  X <- data
  fit <- me(modelName = model, data = X, z = unmap(cl), control = control)
  n <- nrow(X)
  d <- ncol(X)
  G <- length(unique(cl))
  if (is.null(fit$loglik) || is.na(fit$loglik)) {
    return(list(model = model, loglik = NULL, note = attr(fit, "returnCode")))
  }
  npar <- nMclustParams(model, d, G)
  sigma <- fit$parameters$variance$sigma  # d x d x G
  list(
    model = model,
    loglik = fit$loglik,
    bic = bic(model, fit$loglik, n, d, G),  # mclust's sign: 2 loglik - npar log n
    n_parameters = npar,
    n_var_parameters = nVarParams(model, d, G),
    iterations = unname(attr(fit, "info")["iterations"]),
    weights = fit$parameters$pro,
    means = t(fit$parameters$mean),  # G x d
    covariances = lapply(seq_len(G), function(k) sigma[, , k])
  )
}

cases <- list()
for (name in names(datasets)) {
  X <- datasets[[name]]
  tree <- hc(X)
  for (G in sizes[[name]]) {
    cl <- as.vector(hclass(tree, G))
    fits <- lapply(models, fit_one, data = X, cl = cl)
    cases[[length(cases) + 1]] <- list(data = name, G = G, partition = cl, fits = fits)
  }
}

# mclust's own model choice on diabetes, with its default start.
X <- datasets$diabetes
table <- mclustBIC(X, G = 1:9)
best <- summary(table, X)
selection <- list(
  data = "diabetes", models = colnames(table), G = as.integer(rownames(table)),
  bic = unclass(table)[, ],  # G x models, NA where mclust could not fit
  best_model = best$modelName, best_G = best$G, best_bic = best$bic
)

# mclust's Ward start: model-based agglomeration under EII on its "SVD" rows.
ward <- lapply(names(datasets), function(name) {
  X <- datasets[[name]]
  list(data = name, G = 3, partition = as.vector(hclass(hc(X, modelName = "EII", use = "SVD"), 3)))
})

out <- list(
  hc_eii = ward,
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  control = list(tol = control$tol),
  data = lapply(datasets, function(X) unname(X)),
  columns = lapply(datasets, colnames),
  cases = cases,
  selection = selection
)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, null = "null", na = "null",
                  matrix = "rowmajor", pretty = FALSE),
           "tests/reference/mclust_models.json")
