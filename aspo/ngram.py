"""Exact, vectorised n-gram repetition ratios of many token rows (numpy).

``repetition_ratios`` gives, for every row, what ``aspo.metrics.repetition_ratio`` gives for that
row's valid tokens: the share of its n-grams that repeat an earlier n-gram of the same row, 0 for
rows shorter than n. Every n-gram occurrence after the first of its kind is a repeat, so
``repeats = total - distinct`` and the work is counting distinct n-grams per row.

No hashing, so no collisions: each n-gram gets an exact integer code by prefix doubling. When the
codes of a row's w-grams fit in ``bits`` bits, k of them at offsets 0, w, 2w, ... (the last one
moved back to end exactly at the new width) packed into one int64 are an exact code of the wider
gram, since two wider grams are equal iff their codes at every offset are. A packed code that is
not yet n wide is replaced by its dense rank within the row (a per-row sort), which takes it back
to ``bit_length(row length)`` bits. For 18-bit token ids (vocabularies up to 262k), rows of 32,768
tokens (15-bit positions) and n = 20: pack 2 tokens, rank, pack 3 codes (6-grams), rank, pack 4
codes (20-grams), then one sort per row counts the distinct codes. numpy's sorts are several times
faster than torch's on CPU here, hence numpy.

Rows are processed in chunks (a few int64 copies of a chunk are the working set), on a few threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_SENTINEL = np.iinfo(np.int64).max
# A rank step must leave room for two codes and a position in 63 bits: 3 x 21 bits.
_MAX_WIDTH = 1 << 21


def repetition_ratios(
    tokens: np.ndarray, mask: np.ndarray, n: int, chunk_tokens: int = 1 << 17, threads: int | None = None
) -> np.ndarray:
    """Per-row repetition ratio (float64) of the tokens where ``mask`` is set, in row order.

    Rows go in chunks of about ``chunk_tokens`` (small enough to stay in cache) to ``threads``
    threads (default: up to 4 cores; numpy releases the GIL in the sorts and array operations).
    """
    if n < 1:
        raise ValueError(f"repetition n-gram size must be >= 1, got n={n}")
    tokens = np.asarray(tokens)
    mask = np.asarray(mask).astype(bool, copy=False)
    if tokens.ndim != 2 or tokens.shape != mask.shape:
        raise ValueError(f"tokens and mask must be 2-D and of one shape, got {tokens.shape} and {mask.shape}")
    rows, width = tokens.shape
    if width > _MAX_WIDTH:
        raise ValueError(f"rows of {width} tokens are longer than the {_MAX_WIDTH} repetition_ratios supports")
    out = np.zeros(rows, dtype=np.float64)
    if width < n or rows == 0:
        return out
    step = max(1, chunk_tokens // width)
    starts = range(0, rows, step)

    def work(lo: int) -> None:
        out[lo : lo + step] = _chunk_ratios(tokens[lo : lo + step], mask[lo : lo + step], n)

    threads = min(len(starts), threads or min(4, len(os.sched_getaffinity(0))))
    if threads > 1:
        with ThreadPoolExecutor(threads, thread_name_prefix="ngram") as ex:
            list(ex.map(work, starts))
    else:
        for lo in starts:
            work(lo)
    return out


def _chunk_ratios(tokens: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    t, lengths = _compact(tokens.astype(np.int64, copy=False), mask)
    total = lengths - n + 1  # n-grams per row; <= 0 for rows shorter than n
    ratios = np.zeros(len(t), dtype=np.float64)
    if not (total > 0).any():
        return ratios
    code = _gram_codes(t, n)
    width = t.shape[1]
    # Positions past a row's last n-gram hold meaningless codes: park them after every real code.
    code[np.arange(width)[None, :] >= total[:, None]] = _SENTINEL
    code.sort(axis=1)
    # Distinct codes among the first `total` entries (the real ones) of each sorted row.
    changes = (code[:, 1:] != code[:, :-1]) & (np.arange(1, width)[None, :] < total[:, None])
    distinct = changes.sum(axis=1) + (total > 0)
    some = total > 0
    ratios[some] = (total[some] - distinct[some]) / total[some]
    return ratios


def _compact(tokens: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The valid tokens of each row moved to its front (in order), as non-negative int64, zeros
    after them; and the count of valid tokens per row."""
    lengths = mask.sum(axis=1)
    positions = np.arange(tokens.shape[1])[None, :]
    if not np.array_equal(mask, positions < lengths[:, None]):  # holes: not a plain right padding
        dest = np.cumsum(mask, axis=1) - 1
        packed = np.zeros_like(tokens)
        rows = np.broadcast_to(np.arange(len(tokens))[:, None], tokens.shape)
        packed[rows[mask], dest[mask]] = tokens[mask]
        tokens, mask = packed, positions < lengths[:, None]
    if not mask.any():
        return np.zeros_like(tokens), lengths
    low = tokens[mask].min()  # shift ids to start at 0 so they need as few bits as possible
    return np.where(mask, tokens - low, 0), lengths


def _gram_codes(t: np.ndarray, n: int) -> np.ndarray:
    """Exact code of the n-gram at every position (meaningful where the n-gram fits in the row)."""
    pos_bits = max(1, (t.shape[1] - 1).bit_length())
    code, w, bits = t, 1, _bits(t)
    while w < n:
        if -(-n // w) * bits <= 63:  # one last pack reaches n
            return _pack(code, _offsets(w, n), bits)
        # A rank step sorts code and position packed in one int64 (see _dense_rank): leave room.
        per_word = (63 - pos_bits) // bits
        if per_word >= 2:
            w_new = per_word * w  # < n, or the last pack above would have fit
            code = _pack(code, _offsets(w, w_new), bits)
            w = w_new
        code, bits = _dense_rank(code, bits, pos_bits)
    return code


def _offsets(w: int, w_new: int) -> list[int]:
    """Where the w-gram codes making up a w_new-gram start: 0, w, 2w, ..., the last ending at w_new."""
    return list(range(0, w_new - w, w)) + [w_new - w]


def _pack(code: np.ndarray, offsets: list[int], bits: int) -> np.ndarray:
    width = code.shape[1]
    out = np.zeros_like(code)
    for off in offsets:
        out <<= bits
        # Positions whose gram would run past the array end get 0s: their code is never read.
        out[:, : width - off] |= code[:, off:]
    return out


def _dense_rank(code: np.ndarray, bits: int, pos_bits: int) -> tuple[np.ndarray, int]:
    """Each value replaced by its rank among the distinct values of its row; and the bits needed."""
    rows, width = code.shape
    if bits + pos_bits <= 63:
        # Sorting values (code, position) is ~3x faster than argsort + gather; same order.
        ordered = np.sort((code << pos_bits) | np.arange(width), axis=1)
        order = ordered & ((1 << pos_bits) - 1)
        ordered >>= pos_bits
    else:  # codes too wide to carry the position (ids of more than ~48 bits)
        order = np.argsort(code, axis=1)
        ordered = np.take_along_axis(code, order, axis=1)
    ranks = np.zeros_like(code)
    np.cumsum(ordered[:, 1:] != ordered[:, :-1], axis=1, out=ranks[:, 1:])
    out = np.empty_like(code)
    out[np.arange(rows)[:, None], order] = ranks
    return out, max(1, int(ranks[:, -1].max()).bit_length())


def _bits(code: np.ndarray) -> int:
    return max(1, int(code.max()).bit_length()) if code.size else 1
