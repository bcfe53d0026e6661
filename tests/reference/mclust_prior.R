# Reference MAP fits of mclust's conjugate prior (Fraley & Raftery 2007), for
# tests/test_mclust_prior.py.
#
# mclust has a prior for 10 of its 14 models (and the univariate E, V). For each data
# set, number of components G and model this script saves, with prior = priorControl()
# (mclust's defaults: defaultPrior):
# - the prior's hyperparameters (shrinkage, mean, dof, scale) as mclust computes them;
# - mclust's own start (the hc partition Mclust uses) and Mclust's fit from it
#   (loglik, BIC, whether me() from that partition reproduces Mclust's fit);
# - the MAP fit from that start with tolerances tight enough to sit at its fixed point;
# - one MAP M-step of mclust's EM, me(prior = priorControl(), itmax = 1), from the
#   responsibilities of that fit's E-step (exact arithmetic to compare against, no
#   iteration left), and that of the standalone mstep(), which differs for EEI, EVI, EEV;
# - the log-likelihood of the data at the MAP fit, recomputed with dens(), to show
#   which log-likelihood mclust reports (and puts in BIC) with a prior.
#
# Run from the repository root:  Rscript tests/reference/mclust_prior.R
# Needs R with mclust and jsonlite.
suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
tight <- emControl(tol = c(1e-13, 1e-14), itmax = c(100000L, 100000L))

data(diabetes, package = "mclust")
datasets <- list(
  faithful = as.matrix(faithful),
  diabetes = as.matrix(diabetes[, -1]),
  iris = as.matrix(iris[, 1:4]),
  # A small, nearly degenerate case: 12 setosa rows (values rounded to 0.1, repeats)
  # in 4 dimensions, 3 components. Without a prior VVV collapses here.
  small = as.matrix(iris[1:12, 1:4]),
  waiting = as.matrix(faithful[, "waiting", drop = FALSE])
)
sizes <- list(faithful = c(2, 3), diabetes = c(3), iris = c(3), small = c(3), waiting = c(2))
univariate <- c("E", "V")

params_list <- function(parameters, d, G) {
  variance <- parameters$variance
  if (d == 1) {
    sig <- rep_len(variance$sigmasq, G)
    covariances <- lapply(seq_len(G), function(k) matrix(sig[k], 1, 1))
  } else {
    covariances <- lapply(seq_len(G), function(k) variance$sigma[, , k])
  }
  list(weights = parameters$pro, means = t(matrix(parameters$mean, nrow = d)),
       covariances = covariances)
}

fit_one <- function(model, data, G, z0) {
  X <- data
  n <- nrow(X)
  d <- ncol(X)
  prior <- priorControl()
  hyper <- defaultPrior(X, G = G, modelName = model)
  out <- list(model = model,
              prior = list(shrinkage = hyper$shrinkage, mean = hyper$mean, dof = hyper$dof,
                           scale = hyper$scale))
  mc <- tryCatch(Mclust(X, G = G, modelNames = model, prior = prior, verbose = FALSE),
                 error = function(e) NULL)
  default_fit <- me(data = X, modelName = model, z = z0, prior = prior)
  fit <- me(data = X, modelName = model, z = z0, prior = prior, control = tight)
  if (is.null(fit$loglik) || is.na(fit$loglik)) {
    out$loglik <- NULL
    out$note <- attr(fit, "returnCode")
    return(out)
  }
  npar <- nMclustParams(model, d, G)
  ll_dens <- sum(dens(data = X, modelName = model, parameters = fit$parameters,
                      logarithm = TRUE))
  z1 <- estep(data = X, modelName = model, parameters = fit$parameters)$z
  # me()'s own M-step (one iteration from z1): mclust's EM loop. For EEI, EVI and EEV
  # it differs from the standalone mstep() (other denominators; EEV's shrinkage),
  # which is saved as well.
  one <- me(data = X, modelName = model, z = z1, prior = prior,
            control = emControl(tol = c(1e-13, 1e-14), itmax = c(1L, 100000L)))
  step <- mstep(data = X, modelName = model, z = z1, prior = prior, control = tight)
  c(out, list(
    n_parameters = npar,
    mclust_loglik = if (is.null(mc)) NULL else mc$loglik,
    mclust_bic = if (is.null(mc)) NULL else mc$bic,
    me_default_loglik = default_fit$loglik,
    loglik = fit$loglik,
    loglik_dens = ll_dens,
    bic = bic(model, fit$loglik, n, d, G),
    iterations = unname(attr(fit, "info")["iterations"]),
    fit = params_list(fit$parameters, d, G),
    z = z1,
    m_step = params_list(one$parameters, d, G),
    mstep_function = params_list(step$parameters, d, G)
  ))
}

cases <- list()
for (name in names(datasets)) {
  X <- datasets[[name]]
  d <- ncol(X)
  # Mclust's start: its hc partition with mclust.options' hcModelName and hcUse;
  # for one feature, quantile classes (qclass).
  tree <- hc(X, modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"))
  for (G in sizes[[name]]) {
    cl <- if (d == 1) as.vector(mclust:::qclass(X[, 1], G)) else as.vector(hclass(tree, G))
    z0 <- unmap(cl)
    names_here <- if (d == 1) univariate else models
    fits <- lapply(names_here, fit_one, data = X, G = G, z0 = z0)
    cases[[length(cases) + 1]] <- list(data = name, G = G, partition = cl, fits = fits)
  }
}

# The noise component (Vinv = 1 / hypvol(X), mclust's default): faithful with 60 rows
# drawn uniformly over its bounding box, and an initial noise guess (the rows whose
# 5th-nearest-neighbour distance, on standardised columns, is among the largest 15%).
# Mclust(X, G, model, initialization = list(noise = guess)) starts from hc on the
# other rows; the same start (z0: its partition plus the noise column) is saved, and
# the fit from it run to a tight fixed point, without and with the prior.
set.seed(16)
box <- apply(faithful, 2, range)
scattered <- cbind(runif(60, box[1, 1], box[2, 1]), runif(60, box[1, 2], box[2, 2]))
Xn <- rbind(as.matrix(faithful), scattered)
dimnames(Xn) <- NULL
knn5 <- apply(as.matrix(dist(scale(Xn))), 1, function(row) sort(row)[6])
guess <- knn5 > quantile(knn5, 0.85)
Vinv <- hypvol(Xn, reciprocal = TRUE)
noise_fit <- function(model, G, with_prior) {
  prior <- if (with_prior) priorControl() else NULL
  mc <- Mclust(Xn, G = G, modelNames = model, prior = prior,
               initialization = list(noise = guess), verbose = FALSE)
  tree <- hc(Xn[!guess, ], modelName = mclust.options("hcModelName"),
             use = mclust.options("hcUse"))
  cl <- as.vector(hclass(tree, G))
  z0 <- matrix(0, nrow(Xn), G + 1)
  z0[cbind(which(!guess), cl)] <- 1
  z0[guess, G + 1] <- 1
  default_fit <- me(data = Xn, modelName = model, z = z0, Vinv = Vinv, prior = prior)
  fit <- me(data = Xn, modelName = model, z = z0, Vinv = Vinv, prior = prior, control = tight)
  d <- ncol(Xn)
  list(model = model, G = G, prior = with_prior, partition = cl,
       mclust_loglik = mc$loglik, mclust_bic = mc$bic, mclust_n_parameters = mc$df,
       me_default_loglik = default_fit$loglik,
       loglik = fit$loglik, bic = bic(model, fit$loglik, nrow(Xn), d, G, noise = TRUE),
       n_parameters = nMclustParams(model, d, G, noise = TRUE),
       weights = fit$parameters$pro,  # G + 1, the noise's last
       fit = params_list(fit$parameters, d, G))
}
noise_cases <- list(noise_fit("VVV", 2, FALSE), noise_fit("EEE", 3, FALSE),
                    noise_fit("VII", 2, FALSE), noise_fit("EVI", 2, FALSE),
                    noise_fit("VEV", 2, FALSE), noise_fit("VVV", 2, TRUE))

out <- list(
  noise = list(data = Xn, noise_init = guess, Vinv = Vinv, hypvol = hypvol(Xn),
               cases = noise_cases),
  r_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  control = list(tol = tight$tol),
  data = lapply(datasets, function(X) unname(X)),
  cases = cases
)
writeLines(toJSON(out, digits = I(17), auto_unbox = TRUE, null = "null", na = "null",
                  matrix = "rowmajor", pretty = FALSE),
           "tests/reference/mclust_prior.json")
