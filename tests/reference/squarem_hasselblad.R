# Reference numbers for tests/test_acceleration.py: R's SQUAREM on Hasselblad's Poisson mixture.
#
# Run from the repository root:  Rscript tests/reference/squarem_hasselblad.R
# Writes tests/reference/squarem_hasselblad.json.
#
# The example of the SQUAREM package's vignette (Varadhan and Roland 2008): deaths of
# women over 80 per day in The Times, 1910-1912 (Hasselblad 1969), counts 0..9 with
# their frequencies, fitted by a two-component Poisson mixture with parameters
# (p, lambda1, lambda2). The vignette's EM map and objective (the negative
# log-likelihood, log(i!) included) are copied verbatim. Both starts of the issue:
# the vignette's random one, (0.4462944, 5.3433981, 0.8713513), and (0.5, 1, 3).
# For each: fpiter (plain EM) and squarem with the vignette's control (tol = 1e-8,
# package defaults otherwise), their EM evaluations (fpevals), the final
# log-likelihood and parameters; and a run to tol = 1e-13 for the optimum itself.
# "trace": that squarem run's p.intermed (control intermed = TRUE), the parameters
# and objective (negative log-likelihood) at the start and after every cycle, for
# a cycle-by-cycle comparison.
suppressPackageStartupMessages({library(SQUAREM); library(jsonlite)})

counts <- 0:9
freq <- c(162, 267, 271, 185, 111, 61, 27, 8, 3, 1)

poissmix.em <- function(p, y) {
  pnew <- rep(NA, 3)
  i <- 0:(length(y) - 1)
  zi <- p[1] * exp(-p[2]) * p[2]^i /
    (p[1] * exp(-p[2]) * p[2]^i + (1 - p[1]) * exp(-p[3]) * p[3]^i)
  pnew[1] <- sum(y * zi) / sum(y)
  pnew[2] <- sum(y * i * zi) / sum(y * zi)
  pnew[3] <- sum(y * i * (1 - zi)) / sum(y * (1 - zi))
  pnew
}

poissmix.loglik <- function(p, y) {
  i <- 0:(length(y) - 1)
  loglik <- y * log(p[1] * exp(-p[2]) * p[2]^i / exp(lgamma(i + 1)) +
                      (1 - p[1]) * exp(-p[3]) * p[3]^i / exp(lgamma(i + 1)))
  -sum(loglik)
}

summarise <- function(fit) {
  list(fpevals = fit$fpevals, objfevals = fit$objfevals, convergence = fit$convergence,
       par = fit$par, loglik = -poissmix.loglik(fit$par, freq))
}

run <- function(p0) {
  control <- list(tol = 1e-8)
  tight <- squarem(p = p0, y = freq, fixptfn = poissmix.em, objfn = poissmix.loglik,
                   control = list(tol = 1e-13, maxiter = 100000))
  list(
    start = p0,
    fpiter = summarise(fpiter(p = p0, y = freq, fixptfn = poissmix.em,
                              objfn = poissmix.loglik, control = control)),
    squarem = summarise(squarem(p = p0, y = freq, fixptfn = poissmix.em,
                                objfn = poissmix.loglik, control = control)),
    trace = unname(squarem(p = p0, y = freq, fixptfn = poissmix.em, objfn = poissmix.loglik,
                           control = list(tol = 1e-8, intermed = TRUE))$p.intermed),
    optimum = summarise(tight)
  )
}

out <- list(
  R_version = R.version.string,
  SQUAREM_version = as.character(packageVersion("SQUAREM")),
  data = list(counts = counts, freq = freq),
  control = list(tol = 1e-8, note = "package defaults otherwise: K = 1, method = 3 (SqS3), step.min0 = 1, step.max0 = 1, mstep = 4, objfn.inc = 1"),
  note = "loglik is the log-likelihood (log(i!) included) of par; fpevals counts EM map evaluations",
  vignette_start = run(c(0.4462944, 5.3433981, 0.8713513)),
  second_start = run(c(0.5, 1, 3))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/reference/squarem_hasselblad.json")
