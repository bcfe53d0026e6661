# The rows of a data set of tests/reference/mclust_hc.json (written by mclust_hc.R), for
# the scripts that start from them: source("tests/reference/mclust_hc_data.R") from the
# repository root, then data_of("iris"). Needs jsonlite.
reference <- jsonlite::fromJSON("tests/reference/mclust_hc.json", simplifyVector = FALSE)
data_of <- function(name) {
  for (case in reference$cases) {
    if (case$data == name) {
      return(do.call(rbind, lapply(case$X, unlist)))
    }
  }
  stop("no data ", name)
}
