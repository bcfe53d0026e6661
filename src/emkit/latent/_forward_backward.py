"""Compiled forward-backward and Viterbi passes over many sequences at once.

The forward-backward pass is the scaled one (Rabiner 1989): each step's
emission likelihoods are divided by their largest value (``exp(log_b - max)``,
the shift added back to the log-likelihood), and the forward variables are
normalised at every step, the normalisers ``c_t`` giving
``log p(x) = sum_t log c_t + sum_t shift_t``. Everything stays in ``[0, 1]``, so
no step needs a ``log`` or ``exp`` inside the ``K x K`` loops, which is what
makes it several times faster than a log-space pass at the same accuracy.

Sequences are given as rows of one array with ``offsets`` (sequence ``s`` is
rows ``offsets[s]:offsets[s + 1]``). The functions release the GIL, so chunks
of sequences run on threads.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def forward_backward(log_b, offsets, startprob, transmat, gamma, xi_sum, start_sum, loglik):
    """Posteriors and expected counts of every sequence.

    Parameters
    ----------
    log_b : (n, K) log emission densities.
    offsets : (S + 1,) int64 row offsets of the sequences.
    startprob : (K,), transmat : (K, K).
    gamma : (n, K) output, the state posteriors.
    xi_sum : (K, K) output, added to: expected transition counts.
    start_sum : (K,) output, added to: expected start counts.
    loglik : (S,) output, the log-likelihood of each sequence (``-inf`` when the
        sequence is impossible; its posteriors are then left at 0).
    """
    k = log_b.shape[1]
    longest = 0
    for s in range(offsets.size - 1):
        longest = max(longest, offsets[s + 1] - offsets[s])
    b = np.empty((longest, k))
    alpha = np.empty((longest, k))
    scale = np.empty(longest)
    beta_next = np.empty(k)
    weighted = np.empty(k)
    for s in range(offsets.size - 1):
        first = offsets[s]
        steps = offsets[s + 1] - first
        total = 0.0
        for t in range(steps):
            top = -np.inf
            for j in range(k):
                top = max(top, log_b[first + t, j])
            if not np.isfinite(top):
                top = 0.0  # every state impossible: c_t = 0 below marks the sequence
            total += top
            for j in range(k):
                b[t, j] = np.exp(log_b[first + t, j] - top)
        # forward
        norm = 0.0
        for j in range(k):
            alpha[0, j] = startprob[j] * b[0, j]
            norm += alpha[0, j]
        scale[0] = norm
        possible = norm > 0.0
        if possible:
            for j in range(k):
                alpha[0, j] /= norm
        t = 1
        while possible and t < steps:
            norm = 0.0
            for j in range(k):
                acc = 0.0
                for i in range(k):
                    acc += alpha[t - 1, i] * transmat[i, j]
                acc *= b[t, j]
                alpha[t, j] = acc
                norm += acc
            scale[t] = norm
            if norm > 0.0:
                for j in range(k):
                    alpha[t, j] /= norm
            else:
                possible = False
            t += 1
        if not possible:
            loglik[s] = -np.inf
            for t in range(steps):
                for j in range(k):
                    gamma[first + t, j] = 0.0
            continue
        for t in range(steps):
            total += np.log(scale[t])
        loglik[s] = total
        # backward, with the transition counts of each step on the way
        for j in range(k):
            beta_next[j] = 1.0
            gamma[first + steps - 1, j] = alpha[steps - 1, j]
        for t in range(steps - 2, -1, -1):
            inv = 1.0 / scale[t + 1]
            for j in range(k):
                weighted[j] = b[t + 1, j] * beta_next[j] * inv
            for i in range(k):
                acc = 0.0
                a_ti = alpha[t, i]
                for j in range(k):
                    term = transmat[i, j] * weighted[j]
                    acc += term
                    xi_sum[i, j] += a_ti * term
                gamma[first + t, i] = a_ti * acc
                alpha[t, i] = acc  # alpha[t] is no longer needed: keep beta[t] there
            for i in range(k):
                beta_next[i] = alpha[t, i]
        for j in range(k):
            start_sum[j] += gamma[first, j]


@numba.njit(nogil=True, cache=True)
def viterbi(log_b, offsets, log_start, log_trans, states, best):
    """Most likely state path of every sequence (``states``, (n,)) and its log probability
    (``best``, (S,)). Ties go to the lowest state index."""
    k = log_b.shape[1]
    longest = 0
    for s in range(offsets.size - 1):
        longest = max(longest, offsets[s + 1] - offsets[s])
    delta = np.empty(k)
    nxt = np.empty(k)
    back = np.empty((longest, k), dtype=np.int64)
    for s in range(offsets.size - 1):
        first = offsets[s]
        steps = offsets[s + 1] - first
        for j in range(k):
            delta[j] = log_start[j] + log_b[first, j]
        for t in range(1, steps):
            for j in range(k):
                arg = 0
                top = delta[0] + log_trans[0, j]
                for i in range(1, k):
                    value = delta[i] + log_trans[i, j]
                    if value > top:
                        top, arg = value, i
                nxt[j] = top + log_b[first + t, j]
                back[t, j] = arg
            for j in range(k):
                delta[j] = nxt[j]
        arg = 0
        for j in range(1, k):
            if delta[j] > delta[arg]:
                arg = j
        best[s] = delta[arg]
        states[first + steps - 1] = arg
        for t in range(steps - 1, 0, -1):
            arg = back[t, arg]
            states[first + t - 1] = arg
