# mclust's EM iterations per candidate (model, K = 2..9) from its hc start, as mclustBIC runs
# them (me() with emControl()'s defaults), and their total. NA: the run gave up (mclust's
# table shows NA there); its iterations up to that point still count.
#
#   Rscript benchmarks/mclust_em_iterations.R data.csv      # a CSV of numbers, no header
#
# emkit's count for the same selection: benchmarks/bench_small_loop.py (hc start alone) or
# the table of select_model.
suppressPackageStartupMessages(library(mclust))
path <- commandArgs(trailingOnly = TRUE)[1]
X <- as.matrix(read.csv(path, header = FALSE))
tree <- hc(X, use = mclust.options("hcUse"))
total <- 0
for (model in mclust.options("emModelNames")) {
  for (G in 2:9) {
    fit <- me(X, modelName = model, z = unmap(hclass(tree, G)), warn = FALSE)
    info <- unlist(attr(fit, "info"))
    iterations <- if (length(info)) info[[1]] else NA
    cat(model, G, iterations, if (is.null(fit$loglik)) NA else fit$loglik, "\n")
    if (!is.na(iterations)) total <- total + iterations
  }
}
cat("total", total, "\n")
