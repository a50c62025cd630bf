"""One evaluation from features, timed and measured alone in this process (`make bench` runs it in fresh ones).

`python -m benchmarks.evaluation {features,dense} {market,msmt17} [--rerank] [--aqe]` prints one JSON line:
`{"seconds", "baseline_mib" (after the features exist), "peak_mib" (VmHWM after the evaluation), "rank1", "mAP",
"mINP"}`. `features` is `evaluate_features`; `dense` builds the query x gallery matrix (and, with `--rerank`, the
query-query and gallery-gallery ones) and runs `evaluate_rank` / `re_ranking` on them.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

# Market-1501's and MSMT17's test splits: (num_query, num_gallery, identities, cameras, feature dimension), and the
# noise and camera offsets of their synthetic features (MSMT17: Rank-1 about 0.85, mAP about 0.4).
SIZES = {
    "market": ((3368, 15913, 750, 6, 128), {"noise": 1.2, "camera_shift": 0.0}),
    "msmt17": ((11659, 82161, 3060, 15, 1024), {"noise": 2.4, "camera_shift": 0.6}),
}


def synthetic_features(
    num_query: int,
    num_gallery: int,
    num_ids: int,
    num_cams: int,
    dim: int,
    seed: int = 0,
    noise: float = 1.2,
    camera_shift: float = 0.6,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Clustered float32 features: identity centre + camera offset + noise, so ranking is neither trivial nor random.
    Returns `(query, gallery, (q_pids, g_pids, q_camids, g_camids))`."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, dim), dtype=np.float32)
    cameras = camera_shift * rng.standard_normal((num_cams, dim), dtype=np.float32)
    ids = []
    features = []
    for count in (num_query, num_gallery):
        pids, camids = rng.integers(0, num_ids, count), rng.integers(0, num_cams, count)
        values = rng.standard_normal((count, dim), dtype=np.float32)
        values *= noise
        values += centres[pids]
        values += cameras[camids]
        features.append(values)
        ids.append((pids, camids))
    (q_pids, q_camids), (g_pids, g_camids) = ids
    return features[0], features[1], (q_pids, g_pids, q_camids, g_camids)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", choices=("features", "dense"))
    parser.add_argument("size", choices=sorted(SIZES))
    parser.add_argument("--rerank", action="store_true")
    parser.add_argument("--aqe", action="store_true")
    args = parser.parse_args(argv)

    from hacnn_tf.evaluation.distance import compute_distance_matrix
    from hacnn_tf.evaluation.metrics import evaluate_features, evaluate_rank
    from hacnn_tf.evaluation.rerank import re_ranking
    from hacnn_tf.evaluation.resources import status_mib

    shape, options = SIZES[args.size]
    query, gallery, ids = synthetic_features(*shape, **options)
    baseline = status_mib("VmRSS")
    start = time.perf_counter()
    if args.path == "features":
        cmc, mean_ap, mean_inp = evaluate_features(
            query, gallery, *ids, rerank=args.rerank, aqe=args.aqe, return_minp=True
        )
    else:
        if args.aqe:
            raise SystemExit("the dense path has no query expansion")
        distmat = compute_distance_matrix(query, gallery)
        if args.rerank:
            distmat = re_ranking(
                distmat, compute_distance_matrix(query, query), compute_distance_matrix(gallery, gallery)
            )
        cmc, mean_ap, mean_inp = evaluate_rank(distmat, *ids, return_minp=True)
    result = {
        "seconds": time.perf_counter() - start,
        "baseline_mib": baseline,
        "peak_mib": status_mib("VmHWM"),
        "rank1": float(cmc[0]),
        "mAP": mean_ap,
        "mINP": mean_inp,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
