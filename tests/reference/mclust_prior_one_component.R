# mclustBIC's one-component BIC under its default prior, for tests/test_mclust_prior.py.
#
# With G = 1 and a prior, mclustBIC fits every model with mvn(): spherical models (EII,
# VII) as XII, diagonal ones (EEI, VEI, EVI, VVI) as XXI, the others as XXX. So one
# component's fit under the prior is the same for every model of a kind, whatever
# that model's own MAP M-step (EEI's leaves the means unshrunk, VEV's has no dof, ...).
# With a noise component mclustBIC runs me() instead, the model's own M-step: saved too
# (iris, rows 1, 42, 50, 100, 107, 150 starting as noise).
#
# Run from the repository root:  Rscript tests/reference/mclust_prior_one_component.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
datasets <- list(
  # The columns of R's iris and of mtcars (columns on scales far apart).
  iris = as.matrix(iris[, 1:4]),
  mtcars = as.matrix(mtcars[, c("mpg", "disp", "hp", "wt", "qsec")])
)
cases <- lapply(names(datasets), function(name) {
  X <- datasets[[name]]
  bic <- mclustBIC(X, G = 1, modelNames = models, prior = priorControl())
  list(data = name, X = unname(X), models = colnames(bic), bic = unname(bic[1, ]))
})
noise <- seq_len(150) %in% c(1, 42, 50, 100, 107, 150)
noisy <- mclustBIC(datasets$iris, G = 1, modelNames = models, prior = priorControl(),
                   initialization = list(noise = noise))
out <- list(r_version = R.version.string,
            mclust_version = as.character(packageVersion("mclust")),
            cases = cases,
            noise = list(data = "iris", rows = which(noise), models = colnames(noisy),
                         bic = unname(noisy[1, ])))
writeLines(toJSON(out, digits = I(15), auto_unbox = TRUE, matrix = "rowmajor"),
           "tests/reference/mclust_prior_one_component.json")
