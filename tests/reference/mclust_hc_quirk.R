# Reference for emkit's reproduction of a quirk of mclust's VVV agglomeration
# (mclust:::hcVVV, Fortran hcvvv): after a merge, every row that stores the merged
# cluster's Cholesky factor receives the factor's first row, so a cluster of three or
# more rows is read back with another scatter than its own whenever it later meets a
# newer cluster (see src/emkit/estimators/hierarchical.py). Small data sets of a few
# blobs, where clusters of several rows meet and the quirk changes merge costs, and
# mclust's wreath data on the rows mclust's default start agglomerates (use = "SVD").
#
# For each case: the rows (agglomerated as given: hc(X, modelName = "VVV",
# use = "VARS")), mclust's partitions hclass(tree, 1:min(n, 30)) and the cost of each
# merge.
# hc() does not return the costs; they are the 14th result of the same .Fortran call
# mclust:::hcVVV makes (its alpha: the data's trace over n p, beta = 1), whose merge
# pairs are checked against hc()'s.
#
# Run from the repository root:  Rscript tests/reference/mclust_hc_quirk.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

merge_costs <- function(X) {
  n <- nrow(X); p <- ncol(X)
  m <- n - 1
  ld <- max(n, (n * (n - 1))/2 + 1, 3 * m)
  alpha <- max(mclust:::traceW(X/sqrt(n * p)), .Machine$double.eps)
  out <- .Fortran("hcvvv", cbind(X, 0), as.integer(n), as.integer(p), as.integer(1:n),
                  as.integer(n), as.integer(m), as.double(alpha), as.double(1), double(p),
                  double(p * p), double(p * p), double(p * p), as.integer(ld), double(ld),
                  PACKAGE = "mclust")
  list(pairs = out[[1]][1:m, 1:2], costs = out[[14]][1:m])
}

blobs <- function(seed, sizes, p, spread) {
  set.seed(seed)
  centres <- matrix(rnorm(length(sizes) * p, sd = spread), ncol = p)
  X <- do.call(rbind, lapply(seq_along(sizes), function(k)
    sweep(matrix(rnorm(sizes[k] * p), ncol = p) %*% diag(runif(p, 0.5, 2), p), 2,
          centres[k, ], "+")))
  X[sample(nrow(X)), , drop = FALSE]
}

# hc(use = "SVD")'s rows, as mclust::hc computes them.
svd_rows <- function(X) {
  X <- scale(X, center = TRUE, scale = TRUE)
  p <- min(dim(X))
  SVD <- svd(X, nu = 0)
  unname(X %*% SVD$v %*% diag(1/sqrt(SVD$d), p, p))
}
data(wreath, package = "mclust")

datasets <- list(
  blobs2a = blobs(1, c(8, 7, 9, 6), 2, 6),
  blobs2b = blobs(2, c(12, 10, 8), 2, 4),
  blobs2c = blobs(3, c(5, 5, 5, 5, 5), 2, 5),
  blobs3 = blobs(4, c(9, 8, 10), 3, 5),
  blobs4 = blobs(5, c(10, 12), 4, 3),
  wreath_svd = svd_rows(as.matrix(wreath))
)

cases <- lapply(names(datasets), function(name) {
  X <- datasets[[name]]
  tree <- hc(X, modelName = "VVV", use = "VARS")
  fortran <- merge_costs(X)
  stopifnot(all(t(unclass(tree)) == fortran$pairs))
  G <- 1:min(nrow(X), 30)
  classes <- hclass(tree, G)
  list(
    data = name,
    X = unname(X),
    partitions = lapply(G, function(g) as.vector(classes[, g])),
    costs = fortran$costs
  )
})

out <- list(
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  cases = cases
)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, matrix = "rowmajor", pretty = FALSE),
           "tests/reference/mclust_hc_quirk.json")
