"""The Gaussian family: covariance structures, the quadratic-feature kernel and its
compiled pass, the missing-data algebra, codecs, and the user-facing distribution."""
