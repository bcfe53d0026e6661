# Reference for emkit's "hc" start: mclust's model-based hierarchical agglomeration
# under VVV on its "SVD" rows (mclust's default start, mclust.options("hcModelName")
# and ("hcUse")), cut at G = 1..9, and mclustBIC's table over the 14 models from that
# start, for tests/test_hc_start.py and benchmarks/bench_mclust.py.
#
# For each data set: the rows, hclass(hc(X, modelName = "VVV", use = "SVD"), 1:9)
# (one partition per G, classes numbered as mclust numbers them) and mclustBIC(X, G = 1:9)
# (mclust's sign, higher is better; null where mclust could not fit).
#
# Run from the repository root:  Rscript tests/reference/mclust_hc.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

data(diabetes, package = "mclust")
data(banknote, package = "mclust")
data(thyroid, package = "mclust")
data(cross, package = "mclust")
data(wreath, package = "mclust")
data(chevron, package = "mclust")
data(EuroUnemployment, package = "mclust")
data(Baudry_etal_2010_JCGS_examples, package = "mclust")
# The class columns (diabetes, banknote, thyroid, cross, chevron) are left out. mclust's
# other data: acidity and Test1D have one feature (tests/reference/mclust_start_edges.R);
# wdbc (569 x 30) and GvHD (thousands of rows, which mclustBIC agglomerates on a random
# subset) are left for the benchmark.
datasets <- list(
  faithful = as.matrix(faithful),
  diabetes = as.matrix(diabetes[, -1]),
  iris = as.matrix(iris[, 1:4]),
  banknote = as.matrix(banknote[, -1]),
  thyroid = as.matrix(thyroid[, -1]),
  cross = as.matrix(cross[, -1]),
  wreath = as.matrix(wreath),
  chevron = as.matrix(chevron[, -1]),
  EuroUnemployment = as.matrix(EuroUnemployment),
  ex4.1 = as.matrix(ex4.1),
  ex4.2 = as.matrix(ex4.2),
  ex4.3 = as.matrix(ex4.3),
  ex4.4.1 = as.matrix(ex4.4.1),
  ex4.4.2 = as.matrix(ex4.4.2)
)

cases <- lapply(names(datasets), function(name) {
  X <- datasets[[name]]
  tree <- hc(X, modelName = "VVV", use = "SVD")
  classes <- hclass(tree, 1:9)  # n x 9
  table <- mclustBIC(X, G = 1:9)
  best <- summary(table, X)
  list(
    data = name,
    X = unname(X),
    partitions = lapply(1:9, function(G) as.vector(classes[, G])),
    models = colnames(table),
    bic = unclass(table)[, ],  # G x models
    best_model = best$modelName, best_G = best$G, best_bic = best$bic
  )
})

out <- list(
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  cases = cases
)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, null = "null", na = "null",
                  matrix = "rowmajor", pretty = FALSE),
           "tests/reference/mclust_hc.json")
