"""Where rows come from: arrays, files, Dask arrays, their checks and samples."""
