# Reference for emkit's hierarchical (hc) start on data with duplicated rows.
#
# mclust's hc() has a `partition` argument whose default is dupPartition(data): identical
# rows start as one cluster. But hc() hands its arguments on through match.call(), which
# holds only the arguments the caller gave, so that default is never evaluated: hc(X)
# (and mclustBIC, which calls hc(data = data, modelName = ..., use = ...)) starts every
# row alone, duplicates included (attr(tree, "initialPartition") is 1:n). Asked for
# explicitly, hc(X, partition = dupPartition(X)) groups them first.
#
# For each case: the rows, mclust's partitions hclass(hc(X), 1:20) (use = "SVD",
# mclust's default start, as mclustBIC builds it), dupPartition(X) (the duplicate groups,
# numbered by first row), and the partitions of hc(X, partition = dupPartition(X)); with
# the cost of every merge of both trees. hc() does not return the costs; they are the
# 14th result of the same .Fortran call mclust:::hcVVV makes (its alpha: the SVD rows'
# trace over n p, beta = 1), whose merge pairs are checked against hc()'s. On rounded
# data some merges cost exactly the same: a cut between two such merges is decided by
# the rounding of the rows (R's SVD), not by the criterion.
#
# Run from the repository root:  Rscript tests/reference/mclust_hc_duplicates.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

merge_costs <- function(tree) {
  Z <- attr(tree, "data")
  partition <- attr(tree, "initialPartition")
  n <- nrow(Z); p <- ncol(Z)
  l <- length(unique(partition)); m <- l - 1
  ld <- max(n, (l * (l - 1))/2 + 1, 3 * m)
  alpha <- max(mclust:::traceW(Z/sqrt(n * p)), .Machine$double.eps)
  out <- .Fortran("hcvvv", cbind(Z, 0), as.integer(n), as.integer(p),
                  as.integer(partition), as.integer(l), as.integer(m), as.double(alpha),
                  as.double(1), double(p), double(p * p), double(p * p), double(p * p),
                  as.integer(ld), double(ld), PACKAGE = "mclust")
  stopifnot(all(t(unclass(tree)) == out[[1]][1:m, 1:2]))
  out[[14]][1:m]
}

with_duplicates <- function(seed, n, p, groups, copies) {
  set.seed(seed)
  X <- matrix(rnorm(n * p), ncol = p) %*% diag(runif(p, 0.5, 3), p)
  X[1:(n / 2), ] <- X[1:(n / 2), ] + 4  # two blobs
  # `groups` rows repeated `copies` times each (exact copies), then shuffled in.
  picked <- sample(n, groups)
  X <- rbind(X, X[rep(picked, times = copies), , drop = FALSE])
  X[sample(nrow(X)), , drop = FALSE]
}

# Rounded measurements: many rows tie on a coarse grid.
rounded <- function(seed, n) {
  set.seed(seed)
  X <- cbind(c(rnorm(n / 2, 0, 1), rnorm(n / 2, 3, 0.7)), c(rnorm(n / 2, 0, 1.5),
                                                            rnorm(n / 2, 2, 0.5)))
  round(X)
}

data(faithful)
datasets <- list(
  copies2 = with_duplicates(11, 40, 2, 6, 2),
  copies3 = with_duplicates(12, 36, 3, 4, 3),
  rounded2 = rounded(13, 60),
  faithful_rounded = round(as.matrix(faithful) / c(1, 5)) * c(1, 5)  # waiting to 5 minutes
)

cases <- lapply(names(datasets), function(name) {
  X <- unname(as.matrix(datasets[[name]]))
  stopifnot(any(duplicated(X)))
  tree <- hc(X, modelName = "VVV", use = "SVD")
  stopifnot(all(attr(tree, "initialPartition") == seq_len(nrow(X))))  # no grouping
  grouped <- hc(X, modelName = "VVV", use = "SVD", partition = mclust:::dupPartition(X))
  G <- 1:20
  list(
    data = name,
    X = X,
    n_duplicates = sum(duplicated(X)),
    partitions = lapply(G, function(g) as.vector(hclass(tree, G)[, g])),
    costs = merge_costs(tree),
    dup_partition = as.vector(mclust:::dupPartition(X)),
    grouped_partitions = lapply(G, function(g) as.vector(hclass(grouped, G)[, g])),
    grouped_costs = merge_costs(grouped)
  )
})

out <- list(
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  cases = cases
)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, matrix = "rowmajor", pretty = FALSE),
           "tests/reference/mclust_hc_duplicates.json")
