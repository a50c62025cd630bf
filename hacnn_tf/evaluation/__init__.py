"""Re-identification evaluation (numpy + pandas): distances, CMC/mAP, k-reciprocal re-ranking, result tables, plots.

The numerics follow torchreid 0.2.5 (`reid/metrics/distance.py`, `reid/metrics/rank.py`, `reid/utils/rerank.py`).
"""

from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import evaluate, evaluate_rank, results_table, write_results
from hacnn_tf.evaluation.plots import plot_cmc
from hacnn_tf.evaluation.rerank import re_ranking

__all__ = [
    "compute_distance_matrix",
    "evaluate",
    "evaluate_rank",
    "plot_cmc",
    "re_ranking",
    "results_table",
    "write_results",
]
