"""Demonstrations that print EM at work, step by step (used by ``emkit demo``)."""
