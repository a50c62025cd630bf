"""Figures as PNG files (matplotlib's Agg canvas, no pyplot): attention maps and regions, ranked lists, CMC and
training curves (the standard set of them for a trained model is `hacnn_tf.jobs.figures.write_demo_figures`).

Every `plot_*` function writes one PNG atomically and returns its path; the figure's pixel size is its documented
size in inches times `dpi`.
"""

from hacnn_tf.visualization.attention import (
    LevelAttention,
    attention_boxes,
    attention_heatmaps,
    compute_attention,
    draw_attention_panel,
    level_input_sizes,
    plot_attention,
    region_colors,
)
from hacnn_tf.visualization.curves import (
    plot_cmc,
    plot_training_curves,
    read_cmc_csv,
    read_training_log,
    write_cmc_csv,
)
from hacnn_tf.visualization.ranking import RankedList, choose_queries, plot_ranked_lists, rank_gallery

__all__ = [
    "LevelAttention",
    "RankedList",
    "attention_boxes",
    "attention_heatmaps",
    "choose_queries",
    "compute_attention",
    "draw_attention_panel",
    "level_input_sizes",
    "plot_attention",
    "plot_cmc",
    "plot_ranked_lists",
    "plot_training_curves",
    "rank_gallery",
    "read_cmc_csv",
    "read_training_log",
    "region_colors",
    "write_cmc_csv",
]
