"""A Fellegi-Sunter model: u from random pairs, m (and the match share λ) by EM without labels.

EM runs on the table of distinct comparison patterns and their counts, not on pairs: a few
hundred rows whatever the data size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

M_FLOOR = 1e-6
#: Upper bound of m for levels that true matches essentially never show (two valid, different
#: IDs): EM learns them from noise otherwise.
RARE_M_CAP = 1e-5
U_FLOOR = 1e-9


@dataclass
class LevelParams:
    comparison: str
    level: int
    label: str
    m: float
    u: float

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


@dataclass
class Model:
    levels: list[list[LevelParams]]
    lambdas: dict[str, float]
    iterations: int = 0
    converged: bool = False
    history: list[float] = field(default_factory=list)
    #: m estimated per registry (pooled m as the prior); `levels` holds the pooled model.
    registry_levels: dict[str, list[list[LevelParams]]] = field(default_factory=dict)

    def levels_for(self, registry: str) -> list[list[LevelParams]]:
        return self.registry_levels.get(registry, self.levels)

    def prior_weight(self, registry: str) -> float:
        lam = min(max(self.lambdas.get(registry, 0.5), 1e-9), 1 - 1e-9)
        return math.log2(lam / (1 - lam))


def estimate_u(level_counts: list[np.ndarray]) -> list[np.ndarray]:
    """u probabilities from level counts over random (overwhelmingly non-matching) pairs."""
    out = []
    for counts in level_counts:
        counts = counts.astype(float)
        total = counts.sum()
        # Add-half smoothing: a level never seen among random pairs gets a small, finite u.
        u = (
            (counts + 0.5) / (total + 0.5 * len(counts))
            if total
            else np.full(len(counts), 1 / len(counts))
        )
        out.append(np.maximum(u, U_FLOOR))
    return out


def _initial_m(n_levels: int) -> np.ndarray:
    m = np.array([0.5**i for i in range(n_levels)], dtype=float)
    m[-1] = 0.01
    return m / m.sum()


def run_em(
    patterns: np.ndarray,
    counts: np.ndarray,
    groups: np.ndarray,
    group_names: list[str],
    u: list[np.ndarray],
    rare: list[list[bool]],
    floors: list[list[float | None]] | None = None,
    max_iter: int = 200,
    tol: float = 1e-7,
    prior: list[np.ndarray] | None = None,
    prior_strength: float = 0.0,
    initial: list[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], dict[str, float], int, bool, list[float]]:
    """Estimate m per level and λ per group by EM on comparison patterns.

    patterns: (P, K) int array of level indices, -1 where a comparison is null.
    counts: (P,) number of pairs with that pattern; groups: (P,) group index (registry).
    prior, prior_strength: a Dirichlet prior on m (MAP EM): `prior_strength` pseudo-matches
    distributed as `prior` are added to the expected match counts of every M-step, so where
    the data are thin the estimate stays near the prior and where they are rich the data win.
    initial: starting m (default: the prior, else a geometric guess).
    """
    n_pat, n_cmp = patterns.shape
    start = initial if initial is not None else prior
    m = [_initial_m(len(uk)) for uk in u] if start is None else [p.copy() for p in start]
    lam = np.full(len(group_names), 0.1)
    history: list[float] = []
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (reported after the loop)
        log_m = np.zeros(n_pat)
        log_u = np.zeros(n_pat)
        for k in range(n_cmp):
            lv = patterns[:, k]
            ok = lv >= 0
            log_m[ok] += np.log(m[k][lv[ok]])
            log_u[ok] += np.log(u[k][lv[ok]])
        lam_p = lam[groups]
        a = np.log(lam_p) + log_m
        b = np.log1p(-lam_p) + log_u
        mx = np.maximum(a, b)
        post = np.exp(a - mx) / (np.exp(a - mx) + np.exp(b - mx))
        w = post * counts
        new_lam = np.array(
            [
                (w[groups == g].sum() / max(counts[groups == g].sum(), 1.0))
                for g in range(len(group_names))
            ]
        )
        new_lam = np.clip(new_lam, 1e-6, 1 - 1e-6)
        new_m = []
        for k in range(n_cmp):
            lv = patterns[:, k]
            ok = lv >= 0
            mk = np.bincount(lv[ok], weights=w[ok], minlength=len(u[k])).astype(float)
            if prior is not None:
                mk = mk + prior_strength * prior[k]
            total = mk.sum()
            mk = mk / total if total > 0 else _initial_m(len(u[k]))
            mk = np.maximum(mk, M_FLOOR)
            for i, is_rare in enumerate(rare[k]):
                if is_rare:
                    mk[i] = min(mk[i], RARE_M_CAP)
                floor = floors[k][i] if floors else None
                if floor is not None:
                    mk[i] = max(mk[i], floor)
            new_m.append(mk / mk.sum())
        change = max(
            float(np.max(np.abs(new_lam - lam))),
            max(float(np.max(np.abs(a_ - b_))) for a_, b_ in zip(new_m, m, strict=True)),
        )
        m, lam = new_m, new_lam
        history.append(change)
        if change < tol:
            converged = True
            break
    return m, dict(zip(group_names, lam.tolist(), strict=True)), iterations, converged, history
