"""Re-identification evaluation (numpy + pandas): distances, CMC/mAP/mINP, k-reciprocal re-ranking, average query
expansion, result tables; from distance matrices or, in memory linear in the number of samples, from features.

Figures (CMC curves included) are in `hacnn_tf.visualization`.

The numerics follow torchreid 0.2.5 (`reid/metrics/distance.py`, `reid/metrics/rank.py`, `reid/utils/rerank.py`).
"""

from hacnn_tf.evaluation.distance import compute_distance_matrix
from hacnn_tf.evaluation.metrics import (
    evaluate,
    evaluate_features,
    evaluate_from_features,
    evaluate_rank,
    results_dict,
    results_table,
    write_results,
)
from hacnn_tf.evaluation.query_expansion import average_query_expansion
from hacnn_tf.evaluation.rerank import re_ranking, re_ranking_features, reranked_blocks

__all__ = [
    "average_query_expansion",
    "compute_distance_matrix",
    "evaluate",
    "evaluate_features",
    "evaluate_from_features",
    "evaluate_rank",
    "re_ranking",
    "re_ranking_features",
    "reranked_blocks",
    "results_dict",
    "results_table",
    "write_results",
]
