# Reference standard errors for tests/test_standard_errors.py: flexmix's refit() on NPreg.
#
# Run from the repository root:  Rscript tests/reference/flexmix_refit_se.R
# Reads flexmix::NPreg (saved as tests/reference/npreg.csv by flexmix_npreg.R); writes
# tests/reference/flexmix_refit_se.json.
#
# refit() maximises the observed log-likelihood with optim from the EM solution and
# inverts optim's numerical Hessian: an independent computation of the observed
# information. Its parameters are the components' coefficients, then the prior as multinomial logits ("alpha":
# log(prior_k / prior_1)); the Python test maps its weights onto those by the
# delta method. Fits start from the true classes (cluster = NPreg$class) and run
# to a tight tolerance, as in flexmix_npreg.R.
suppressPackageStartupMessages({library(flexmix); library(jsonlite)})

data("NPreg", package = "flexmix")
here <- "tests/reference"
control <- list(tolerance = 1e-13, iter.max = 10000, minprior = 0)

fits <- list(
  poisson = flexmix(yp ~ x, data = NPreg, k = 2, cluster = NPreg$class,
                    model = FLXMRglm(family = "poisson"), control = control)
)
# (The binomial yb ~ x fit from the classes leaves refit's Hessian singular, and the
# Gaussian driver's sigma is not the maximum likelihood one: see flexmix_npreg.R.)

summarise <- function(fit) {
  r <- refit(fit)
  list(loglik = as.numeric(logLik(fit)),
       names = names(r@coef), estimate = unname(r@coef),
       vcov = unname(r@vcov), prior = unname(prior(fit)))
}

result <- c(
  list(R_version = R.version.string, flexmix_version = as.character(packageVersion("flexmix")),
       data = "flexmix::NPreg (npreg.csv)", start = "cluster = NPreg$class",
       control = control,
       note = "vcov of (coef of component 1, coef of component 2, alpha = log(prior2/prior1))"),
  lapply(fits, summarise)
)
write_json(result, file.path(here, "flexmix_refit_se.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
