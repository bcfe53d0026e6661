"""The EM loop and its drivers: statistics as values, the engine, variants, SQUAREM,
threads, and :func:`emkit.em` for models written as two functions.

Knows no component family and no file format."""
