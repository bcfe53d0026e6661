"""The scikit-learn fronts: GaussianMixture, MixtureModel, KMeans, the imputer, model
selection, and what only they use (initialisation, checkpoints)."""
