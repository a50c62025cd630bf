"""Re-identification evaluation (numpy + pandas): distances, CMC/mAP, k-reciprocal re-ranking, result tables.

Figures (CMC curves included) are in `hacnn_tf.visualization`.

The numerics follow torchreid 0.2.5 (`reid/metrics/distance.py`, `reid/metrics/rank.py`, `reid/utils/rerank.py`).
"""

from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import evaluate, evaluate_rank, results_table, write_results
from hacnn_tf.evaluation.rerank import re_ranking

__all__ = [
    "compute_distance_matrix",
    "evaluate",
    "evaluate_rank",
    "re_ranking",
    "results_table",
    "write_results",
]
