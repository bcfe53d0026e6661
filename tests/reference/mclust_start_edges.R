# Reference for emkit's "hc" start where mclust does not agglomerate under VVV:
# one feature (mclustBIC starts from quantile classes, mclust:::qclass) and no more
# rows than features (mclustBIC agglomerates under EII instead of VVV).
#
# For each case: the rows, mclust's starting partitions for G = 1..9 and
# mclustBIC(X, G = 1:9) (mclust's sign, higher is better; null where it could not fit).
#
# Run from the repository root:  Rscript tests/reference/mclust_start_edges.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

data(acidity, package = "mclust")
data(Baudry_etal_2010_JCGS_examples, package = "mclust")
set.seed(7)
wide <- rbind(matrix(rnorm(8 * 12), 8, 12), matrix(rnorm(7 * 12, mean = 3), 7, 12))

one_feature <- function(name, x) {
  table <- mclustBIC(x, G = 1:9)
  best <- Mclust(x, x = table)
  list(
    data = name, start = "quantile",
    X = matrix(x, ncol = 1),
    partitions = lapply(1:9, function(G) as.vector(mclust:::qclass(x, G))),
    models = colnames(table), bic = unclass(table)[, , drop = FALSE],
    best_model = best$modelName, best_G = best$G, best_bic = best$bic,
    best_weights = best$parameters$pro  # the chosen fit's mixing proportions
  )
}

cases <- list(
  one_feature("acidity", as.vector(acidity)),
  one_feature("waiting", as.numeric(faithful$waiting)),  # many ties
  one_feature("Test1D", as.numeric(Test1D[, 1])),  # mclust's choice has a 1.2-row component
  list(
    data = "wide", start = "EII",
    X = unname(wide),
    partitions = lapply(1:9, function(G)
      as.vector(hclass(hc(wide, modelName = "EII", use = "SVD"), G))),
    models = c("EII"),
    bic = matrix(unclass(mclustBIC(wide, G = 1:9, modelNames = "EII"))[, 1], ncol = 1)
  )
)

out <- list(
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  cases = cases
)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, null = "null", na = "null",
                  matrix = "rowmajor", pretty = FALSE),
           "tests/reference/mclust_start_edges.json")
