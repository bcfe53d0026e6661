# Reference numbers for tests/test_regression_mixture.py: flexmix on its own NPreg data.
#
# Run from the repository root:  Rscript tests/reference/flexmix_npreg.R
# Writes tests/reference/npreg.csv (the data) and tests/reference/flexmix_npreg.json.
#
# Every fit starts from the same memberships as the Python test (the true `class`
# column, flexmix's `cluster=`) and runs to a tight tolerance, so both libraries
# reach the same fixed point.
#
# flexmix's Gaussian driver (FLXMRglm) estimates sigma with a degrees-of-freedom
# correction, sigma^2 = n / (n - rank) * sum(w r^2) / sum(w), which is not the
# maximum likelihood M-step; emkit's is the maximum likelihood one,
# sum(w r^2) / sum(w). "gaussian_ml" therefore runs flexmix's EM with a driver
# identical to FLXMRglm(family = "gaussian") except for that line; "gaussian_stock"
# is plain FLXMRglm, kept to check that emkit's likelihood is at least as high.
suppressPackageStartupMessages({library(flexmix); library(jsonlite)})

data("NPreg", package = "flexmix")
here <- "tests/reference"
write.csv(NPreg[, c("x", "yn", "yp", "yb", "class")], file.path(here, "npreg.csv"),
          row.names = FALSE)

control <- list(tolerance = 1e-13, iter.max = 10000, minprior = 0)

ml_gaussian <- FLXMRglm(family = "gaussian")
ml_gaussian@fit <- function(x, y, w, component) {
  fit <- lm.wfit(x, y, w = w)
  ml_gaussian@defineComponent(list(
    coef = coef(fit), df = ncol(x) + 1,
    sigma = sqrt(sum(fit$weights * fit$residuals^2) / sum(fit$weights))))
}

summarise <- function(fit) {
  p <- parameters(fit)
  out <- list(
    loglik = as.numeric(logLik(fit)),
    df = attr(logLik(fit), "df"),
    bic = BIC(fit),
    aic = AIC(fit),
    icl = ICL(fit),
    iterations = fit@iter,
    converged = fit@converged,
    coef = unname(t(p[grepl("^coef", rownames(p)), , drop = FALSE])),
    prior = unname(prior(fit))
  )
  if (any(rownames(p) == "sigma")) out$sigma <- unname(p["sigma", ])
  if (is(fit@concomitant, "FLXPmultinom")) out$gate <- unname(t(fit@concomitant@coef))
  out
}

fits <- list(
  gaussian_ml = flexmix(yn ~ x + I(x^2), data = NPreg, k = 2, cluster = NPreg$class,
                        model = ml_gaussian, control = control),
  gaussian_stock = flexmix(yn ~ x + I(x^2), data = NPreg, k = 2, cluster = NPreg$class,
                           model = FLXMRglm(family = "gaussian"), control = control),
  poisson = flexmix(yp ~ x, data = NPreg, k = 2, cluster = NPreg$class,
                    model = FLXMRglm(family = "poisson"), control = control),
  gaussian_ml_gate = flexmix(yn ~ x + I(x^2), data = NPreg, k = 2, cluster = NPreg$class,
                             model = ml_gaussian, concomitant = FLXPmultinom(~ x),
                             control = control)
)

result <- c(
  list(R_version = R.version.string, flexmix_version = as.character(packageVersion("flexmix")),
       data = "flexmix::NPreg (npreg.csv)", start = "cluster = NPreg$class",
       control = control,
       note = paste("coef rows are components, columns (Intercept), x[, x^2];",
                    "gate rows are components, columns (Intercept), x")),
  lapply(fits, summarise)
)
write_json(result, file.path(here, "flexmix_npreg.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
