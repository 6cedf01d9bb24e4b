"""Rule extraction: a depth-limited decision tree fitted to a model's own predictions, read as rules.

scikit-learn's ``DecisionTreeClassifier`` with ``max_depth`` 3 is the surrogate: every leaf is one rule of at most
three antecedents, the tree has at most eight, and the fit takes milliseconds, so five seeds cost nothing.
(imodels' FIGS or RuleFit reach more rules per antecedent budget, but add a dependency and, for RuleFit, an
L1 fit whose rules move between seeds; the tree's only randomness is the order in which tied splits are tried.)
The probe set it is fitted on is the training split plus seeded copies jittered by a tenth of each feature's
spread, labelled by the model: the boundary the rules must follow is the model's, and points near the training
data show it more densely (TREPAN's idea). Fidelity is agreement with the model on held-out data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.tree import DecisionTreeClassifier

from harness.config import require_int, require_range
from harness.errors import ConfigError

QUANTILE_BINS = 10  # rule overlap: thresholds snapped to deciles of the probe set


@dataclasses.dataclass(frozen=True)
class SurrogateSettings:
    max_depth: int = 3
    max_leaves: int = 16
    probe_copies: int = 5  # jittered copies of a table's training split added to its probe set (none for images:
    # pixel noise makes images no data set holds, and the pixel models' training splits are large enough)
    jitter: float = 0.1  # their noise, in units of each feature's spread
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    image_grid: int = 8  # images are read as mean intensities on at most this many cells a side
    min_gain: float = 0.01  # the least weighted entropy decrease a split must bring

    def __post_init__(self) -> None:
        require_int("max_depth", self.max_depth, 1)
        require_int("max_leaves", self.max_leaves, 2)
        require_int("probe_copies", self.probe_copies, 0)
        require_range("jitter", self.jitter, 0.0, 10.0)
        if not self.seeds:
            raise ConfigError("`seeds` must name at least one seed, got ()")


def features(x: np.ndarray, grid: int = 8) -> np.ndarray:
    """What the rules read: a table as it is; an image (N, C, H, W) as mean intensities on a grid of at most
    ``grid`` cells a side (32x32 pixels are too many to read; an 8x8 image keeps its pixels)."""
    if x.ndim == 2:
        return x.astype(np.float32)
    if x.ndim != 4:
        return x.reshape(len(x), -1).astype(np.float32)
    n, c, h, w = x.shape
    fy, fx = max(1, h // grid), max(1, w // grid)
    pooled = x[:, :, : h - h % fy, : w - w % fx].reshape(n, c, h // fy, fy, w // fx, fx).mean(axis=(3, 5))
    return pooled.reshape(n, -1).astype(np.float32)


def feature_names(x: np.ndarray, declared: Sequence[str] | None, grid: int = 8) -> list[str]:
    """The spec's feature names for a table, ``pixel (r, c)`` / ``cell (r, c)`` for an image's grid."""
    width = features(x[:1], grid).shape[1]
    if declared is not None and len(declared) == width:
        return list(declared)
    if x.ndim == 4:
        side = round(float(np.sqrt(width / x.shape[1])))
        word = "pixel" if x.shape[-1] <= grid else "cell"
        return [f"{word} ({i // side % side}, {i % side})" + (f" ch{i // (side * side)}" if x.shape[1] > 1 else "")
                for i in range(width)]
    return [f"feature {i}" for i in range(width)]


def probe_set(train: np.ndarray, settings: SurrogateSettings, seed: int = 0) -> np.ndarray:
    """The fixed probe set: the training features and ``probe_copies`` jittered copies (seeded)."""
    rng = np.random.default_rng(seed)
    spread = train.std(axis=0)
    copies = [train + rng.normal(0.0, 1.0, train.shape) * settings.jitter * spread
              for _ in range(settings.probe_copies)]
    return np.concatenate([train, *copies]).astype(np.float32)


def fit(probe: np.ndarray, labels: np.ndarray, settings: SurrogateSettings, seed: int) -> DecisionTreeClassifier:
    # A split must lower the weighted entropy by min_impurity_decrease: a near-pure node split only to isolate an
    # outlier can be split on many features equally well, and the seed then picks one (rules moving between seeds).
    tree = DecisionTreeClassifier(max_depth=settings.max_depth, max_leaf_nodes=settings.max_leaves,
                                  criterion="entropy", min_impurity_decrease=settings.min_gain, random_state=seed)
    return tree.fit(probe, labels)


@dataclasses.dataclass(frozen=True)
class Rule:
    """``IF antecedents THEN predicted`` with the share of the probe set it covers."""

    antecedents: tuple[tuple[int, str, float], ...]  # (feature index, "<=" or ">", threshold)
    predicted: int
    coverage: float

    def text(self, names: Sequence[str], classes: Sequence[str] | None = None) -> str:
        parts = [f"{names[f]} {op} {t:.3g}" for f, op, t in self.antecedents] or ["always"]
        label = classes[self.predicted] if classes and self.predicted < len(classes) else f"class {self.predicted}"
        return f"IF {' AND '.join(parts)} THEN {label} ({self.coverage:.0%} of the probe set)"


def rules(tree: DecisionTreeClassifier) -> list[Rule]:
    """Every root-to-leaf path of ``tree`` as a rule, largest coverage first; a subtree whose leaves all predict
    one class is one rule (its inner splits decide nothing)."""
    t = tree.tree_
    total = float(t.n_node_samples[0])
    out: list[Rule] = []

    def predicted(node: int) -> set[int]:
        if t.children_left[node] == t.children_right[node]:
            return {int(tree.classes_[int(np.argmax(t.value[node][0]))])}
        return predicted(int(t.children_left[node])) | predicted(int(t.children_right[node]))

    def walk(node: int, path: tuple[tuple[int, str, float], ...]) -> None:
        classes = predicted(node)
        if len(classes) == 1:
            out.append(Rule(path, classes.pop(), float(t.n_node_samples[node]) / total))
            return
        f, thr = int(t.feature[node]), float(t.threshold[node])
        walk(int(t.children_left[node]), (*path, (f, "<=", thr)))
        walk(int(t.children_right[node]), (*path, (f, ">", thr)))

    walk(0, ())
    return sorted(out, key=lambda r: -r.coverage)


def bin_edges(probe: np.ndarray, bins: int = QUANTILE_BINS) -> np.ndarray:
    """Per feature, the inner quantile edges of the probe set: (features, bins - 1)."""
    return np.quantile(probe, np.linspace(0, 1, bins + 1)[1:-1], axis=0).T


def snapped(rule_set: Sequence[Rule], edges: np.ndarray) -> set[tuple[frozenset[tuple[int, str, int]], int]]:
    """Rules with each threshold replaced by its quantile bin, so that 0.412 and 0.405 read as one condition."""
    return {(frozenset((f, op, int(np.searchsorted(edges[f], thr))) for f, op, thr in r.antecedents), r.predicted)
            for r in rule_set}


def overlap(a: Sequence[Rule], b: Sequence[Rule], edges: np.ndarray) -> float:
    """Jaccard overlap of two rule sets after snapping their thresholds to quantile bins."""
    sa, sb = snapped(a, edges), snapped(b, edges)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


@dataclasses.dataclass
class Surrogate:
    """A fitted surrogate and its figures."""

    tree: DecisionTreeClassifier
    rules: list[Rule]
    fidelity: float  # agreement with the model on the held-out rows
    identical_seeds: float = 1.0  # share of the seeds whose rules equal the first seed's
    seed_agreement: float = 1.0  # lowest agreement on held-out rows between the first seed's and another's

    @property
    def leaves(self) -> int:
        """Rules read off the tree (leaves, with sibling leaves of one class merged)."""
        return len(self.rules)

    @property
    def antecedents_max(self) -> int:
        return max((len(r.antecedents) for r in self.rules), default=0)

    @property
    def antecedents_mean(self) -> float:
        return float(np.mean([len(r.antecedents) for r in self.rules])) if self.rules else 0.0


def surrogate(probe: np.ndarray, probe_labels: np.ndarray, held_out: np.ndarray, held_out_labels: np.ndarray,
              settings: SurrogateSettings, stability: bool = True) -> Surrogate:
    """Fit on the probe set with the first seed; with ``stability``, refit with every seed and compare."""
    first = fit(probe, probe_labels, settings, settings.seeds[0])
    found = Surrogate(first, rules(first), float(np.mean(first.predict(held_out) == held_out_labels)))
    if stability and len(settings.seeds) > 1:
        same, agree = [], []
        base = first.predict(held_out)
        for seed in settings.seeds[1:]:
            other = fit(probe, probe_labels, settings, seed)
            same.append(rules(other) == found.rules)
            agree.append(float(np.mean(other.predict(held_out) == base)))
        found.identical_seeds = (1 + sum(same)) / len(settings.seeds)
        found.seed_agreement = min(agree)
    return found


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean of per-item values with its t interval (a point interval when every item is alike)."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if len(v) < 2 or float(v.std()) == 0.0:
        return Interval(mean, mean, mean, len(v))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * stats.sem(v))
    return Interval(mean, mean - half, mean + half, len(v))


def rules_kept(surrogate_pred: np.ndarray, reference_pred: np.ndarray, variant_pred: np.ndarray,
               labels: np.ndarray) -> Interval:
    """How far the variant's cross-fidelity falls beyond its top-1 accuracy drop, per held-out item:
    ``([S = R] - [S = V]) - ([R right] - [V right])``, with its interval. Against the *agreement* drop
    (``1 - [V = R]``) the fall could never exceed it — ``P(V != S) <= P(V != R) + P(R != S)`` — so the contract
    reads the accuracy drop: a variant that keeps its accuracy while leaving the reference's rules is right for
    other reasons, and shows here."""
    fall = (surrogate_pred == reference_pred).astype(float) - (surrogate_pred == variant_pred).astype(float)
    drop = (reference_pred == labels).astype(float) - (variant_pred == labels).astype(float)
    return mean_interval(fall - drop)
