"""Farthest point sampling (FPS): an exact reference and a fast variant for the 10 Hz loop.

exact_fps      the textbook greedy O(N*k) algorithm, vectorised over the N points per step (numpy).
fast_fps       Morton (z-order) sort, split into `chunks` spatially compact chunks of equal size,
               then FPS inside every chunk, all chunks advanced together in one vectorised step,
               each chunk only while its farthest point is nearly the farthest of all (so samples
               go where the area is): ~k / chunks .. 2 k / chunks Python steps instead of k.
               numpy on the CPU; torch (CUDA when available) with backend="torch".
covering_radius  max over the input points of the distance to the nearest sample: the quality
               measure FPS greedily minimises (a 2-approximation of the optimal k-centre radius).

All functions return indices into the input, exactly k of them (repeated when the input has fewer
than k distinct points).
"""

from __future__ import annotations

import numpy as np


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _pad(idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """`idx` repeated up to k entries (every input point kept, extras drawn at random)."""
    if idx.size >= k:
        return idx[:k]
    if idx.size == 0:
        raise ValueError("cannot sample from an empty point set")
    extra = idx[rng.integers(0, idx.size, k - idx.size)]
    return np.concatenate([idx, extra])


# ----------------------------------------------------------------------------- exact reference

def exact_fps(points: np.ndarray, k: int, start: int = 0, return_radius: bool = False):
    """Exact greedy FPS of (N, 3) `points`: indices (k,), first = `start`.

    Each step picks the point farthest from the samples so far (ties: lowest index). With
    `return_radius`, also returns the covering radius of the result (the next step's distance).
    """
    p = np.ascontiguousarray(points, dtype=np.float64)
    n = p.shape[0]
    if n == 0:
        raise ValueError("cannot sample from an empty point set")
    m = min(k, n)
    idx = np.empty(m, dtype=np.int64)
    dist = np.full(n, np.inf)
    cur = int(start)
    for i in range(m):
        idx[i] = cur
        d = p - p[cur]
        np.minimum(dist, np.einsum("ij,ij->i", d, d), out=dist)
        cur = int(np.argmax(dist))
    out = _pad(idx, k, np.random.default_rng(0))
    if return_radius:
        return out, float(np.sqrt(dist.max()))
    return out


def covering_radius(points: np.ndarray, samples: np.ndarray, block: int = 8192) -> float:
    """max_i min_j |points_i - samples_j| (blocked matrix products, O(N*k) memory-light)."""
    p = np.asarray(points, dtype=np.float64)
    s = np.asarray(samples, dtype=np.float64)
    s2 = np.einsum("ij,ij->i", s, s)
    worst = 0.0
    for a in range(0, p.shape[0], block):
        q = p[a:a + block]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + s2[None, :] - 2.0 * (q @ s.T)
        worst = max(worst, float(np.maximum(d2.min(axis=1), 0.0).max()))
    return float(np.sqrt(worst))


# ----------------------------------------------------------------------------- fast variant

def voxel_downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Indices of one point per occupied voxel of edge `voxel` (the last point of each voxel)."""
    p = np.asarray(points)
    lo = p.min(axis=0)
    key3 = ((p - lo) * (1.0 / voxel)).astype(np.int64)
    dims = key3.max(axis=0) + 1
    key = (key3[:, 0] * dims[1] + key3[:, 1]) * dims[2] + key3[:, 2]
    # np.unique(return_index) is a sort; a scatter into a hash of the keys is O(N): the last
    # write per key wins, then a point is a representative iff it is the winner of its key.
    size = 1 << max(12, int(2 * p.shape[0] - 1).bit_length())
    slot = (key * 0x9E3779B1) & (size - 1)
    table = np.full(size, -1, dtype=np.int64)
    order = np.arange(p.shape[0])
    table[slot] = order
    winner = table[slot] == order
    # Different keys can share a slot (hash collision): their points lose; recover those voxels.
    lost = ~winner
    if lost.any():
        taken = np.zeros(p.shape[0], dtype=bool)
        taken[winner] = True
        same = key[table[slot[lost]]] == key[lost]  # a point of the same voxel already won
        miss = np.flatnonzero(lost)[~same]
        if miss.size:
            _, first = np.unique(key[miss], return_index=True)
            taken[miss[first]] = True
        return np.flatnonzero(taken)
    return np.flatnonzero(winner)


def surface_voxel(points: np.ndarray, target: float) -> float:
    """Voxel edge that leaves about `target` occupied voxels: depth points lie on surfaces, so
    occupied voxels ~ area / edge^2; the area is measured with coarse voxels on a subsample."""
    p = np.asarray(points)
    sub = p[:: max(1, p.shape[0] // 20000)]
    ext = np.ptp(sub, axis=0)
    coarse = max(float(np.sqrt((ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2]) / 2000.0)), 1e-3)
    area = voxel_downsample(sub, coarse).size * coarse * coarse
    return max(float(np.sqrt(area / target)), 1e-4)


# z-order code of a 7-bit coordinate: bit i moves to bit 3 i (21-bit codes for 3 axes)
_SPREAD7 = np.array([sum(((v >> i) & 1) << (3 * i) for i in range(7)) for v in range(128)], dtype=np.uint32)


def _chunked(points: np.ndarray, candidates: np.ndarray, chunks: int):
    """Candidates in Morton order split into `chunks` equal parts: (C, L) index array (padded by
    repeating each chunk's last index) and the real length of each chunk.

    Morton codes on a 128^3 grid over the bounding box (21 bits), sorted as two stable 16-bit
    passes (low bits, then high bits): numpy sorts 16-bit integers with a linear-time radix sort.
    """
    cols = np.ascontiguousarray(points.T if candidates.size == points.shape[0] else points[candidates].T)
    code = np.zeros(candidates.size, dtype=np.uint32)
    for axis in range(3):  # column by column: numpy's axis-0 reductions of (N, 3) are slow
        col = cols[axis]
        lo, hi = col.min(), col.max()
        q = ((col - lo) * (127.999 / max(float(hi - lo), 1e-9))).astype(np.intp)
        code |= _SPREAD7[q] << np.uint32(axis)
    order = np.argsort((code & 0xFFFF).astype(np.uint16), kind="stable")
    order = order[np.argsort((code[order] >> 16).astype(np.uint16), kind="stable")]
    ordered = candidates[order]
    m = ordered.size
    bounds = np.linspace(0, m, chunks + 1).round().astype(np.int64)
    lengths = np.diff(bounds)
    width = int(lengths.max())
    col = np.minimum(np.arange(width)[None, :], lengths[:, None] - 1)
    return ordered[bounds[:-1, None] + col], lengths


def _pick_rounds(k: int, act, cur, advance) -> tuple[list, list]:
    """The rounds of adaptive FPS, for either backend: each round every active row (`act`, 1-D)
    picks its farthest point (`cur[act]`), until k picks in all; `advance(act, cur, n)`, with n
    picked so far, updates the distances and returns the next round's (act, cur). Returns the
    picked rows and columns of every round."""
    picked_r, picked_c = [], []
    n = 0
    while True:
        picked_r.append(act)
        picked_c.append(cur[act])
        n += len(act)
        if n >= k:
            return picked_r, picked_c
        act, cur = advance(act, cur, n)


def _adaptive_fps_numpy(xyz: np.ndarray, k: int, starts: np.ndarray, alpha: float) -> list:
    """FPS in every row of (C, L, 3) `xyz` at once, rows advanced only while their farthest point
    is within `alpha` of the farthest over all rows (so every row ends at about the same covering
    radius, like global FPS). Returns the picked (rows, columns), k in all, in pick order.

    Squared distances as |x|^2 - 2 x.c + |c|^2 (one batched matrix product per step) on
    coordinates centred per row, so float32 keeps ~1e-7 m^2 absolute precision.
    """
    c = xyz.shape[0]
    rows = np.arange(c)
    p = xyz - xyz[:, :1, :]  # centred per row (any point of the row will do)
    sq = np.einsum("cld,cld->cl", p, p)
    dist = np.full(sq.shape, np.inf, dtype=p.dtype)
    a2 = p.dtype.type(alpha * alpha)
    cur = np.asarray(starts, dtype=np.int64).copy()  # each row's next pick (its farthest point)
    m = np.empty(c, dtype=p.dtype)  # and that point's squared distance

    def advance(act, cur, n):  # cur: updated in place
        full = act.size == c
        ra = rows if full else np.arange(act.size)
        pa = p if full else p[act]
        sa = sq if full else sq[act]
        ca = cur[act]
        ctr = pa[ra, ca]  # (A, 3) the new samples
        d = np.matmul(pa, (-2.0 * ctr)[:, :, None])[..., 0]
        d += sa
        d += sa[ra, ca][:, None]
        if full:
            np.minimum(dist, d, out=dist)
            da = dist
        else:
            da = np.minimum(dist[act], d)
            dist[act] = da
        # only the rows that changed need a new farthest point
        ca = da.argmax(axis=1)
        cur[act] = ca
        m[act] = da[ra, ca]
        act = np.flatnonzero(m >= a2 * m.max())
        if n + act.size > k:  # the last step: the farthest rows only
            act = np.sort(np.argsort(-m, kind="stable")[: k - n])
        return act, cur

    picked_r, picked_c = _pick_rounds(k, rows, cur, advance)
    return np.concatenate(picked_r), np.concatenate(picked_c)


def _adaptive_fps_torch(xyz: np.ndarray, k: int, starts: np.ndarray, alpha: float, device=None):
    """The same algorithm in torch (CUDA when available)."""
    import torch

    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    p = torch.as_tensor(xyz, device=dev)
    c = p.shape[0]
    rows = torch.arange(c, device=dev)
    dist = torch.full(p.shape[:2], float("inf"), dtype=p.dtype, device=dev)

    def advance(act, cur, n):
        ca = cur[act]
        d = ((p[act] - p[act, ca][:, None, :]) ** 2).sum(-1)
        dist[act] = torch.minimum(dist[act], d)
        m, cur = dist.max(dim=1)
        act = torch.nonzero(m >= alpha * alpha * m.max()).reshape(-1)
        if n + int(act.numel()) > k:
            act = torch.sort(torch.argsort(-m, stable=True)[: k - n]).values
        return act, cur

    picked_r, picked_c = _pick_rounds(k, rows, torch.as_tensor(starts, device=dev), advance)
    return torch.cat(picked_r).cpu().numpy(), torch.cat(picked_c).cpu().numpy()


def fast_fps(points: np.ndarray, k: int, *, chunks: int = 96, alpha: float = 0.9,
             voxel: float | None = 0.0, seed=0, backend: str = "numpy", device=None) -> np.ndarray:
    """Approximate FPS of (N, 3) `points`: k indices, covering radius close to exact_fps.

    1. (optional) voxel-grid pre-downsampling: `voxel` edge in metres, None = a quarter of the
       expected sample spacing, 0 (default) = off. Off is better: a voxel representative can sit
       a voxel diagonal away from the points it stands for, which adds straight to the radius;
    2. points sorted along a Morton (z-order) curve and cut into `chunks` compact, equal-size
       chunks;
    3. FPS in all chunks at once, vectorised; a chunk takes its next sample only while its
       farthest point is at least `alpha` times the farthest over all chunks, so chunks of more
       area get more samples and all end at about the same radius, like global FPS does.
       That is k / chunks to ~2 k / chunks Python steps instead of k.
    `backend` "numpy" or "torch" (CUDA when available, or `device`). `seed` picks the start
    point of every chunk.
    """
    rng = _rng(seed)
    p = np.asarray(points)
    n = p.shape[0]
    if n == 0:
        raise ValueError("cannot sample from an empty point set")
    if n <= k:
        return _pad(np.arange(n), k, rng)
    cand = np.arange(n)
    if voxel is None:
        voxel = 0.25 * surface_voxel(p, k)
    if voxel > 0:
        cand = voxel_downsample(p, voxel)
        if cand.size <= k:
            return _pad(cand, k, rng)
    chunks = int(max(1, min(chunks, cand.size // 2, k)))
    table, lengths = _chunked(p, cand, chunks)
    starts = (rng.random(chunks) * lengths).astype(np.int64)
    xyz = p[table].astype(np.float32, copy=False)
    if backend == "torch":
        r, c = _adaptive_fps_torch(xyz, k, starts, alpha, device)
    elif backend == "numpy":
        r, c = _adaptive_fps_numpy(xyz, k, starts, alpha)
    else:
        raise ValueError(f"unknown backend {backend!r}; expected 'numpy' or 'torch'")
    return table[r, c]
