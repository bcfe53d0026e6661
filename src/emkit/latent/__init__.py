"""Latent structures that turn a component family into an EM model (``e_step``,
``m_step``): the finite mixture, and its online (stepwise) update."""
