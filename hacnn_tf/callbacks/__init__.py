"""Keras callbacks of a training run, in one place: `training` (atomic checkpoints, learning-rate log, the crash-safe
epoch backup), `reid_evaluation` (Rank-k/mAP on a query/gallery split during `fit`), `training_log` (the run's
`training_log.csv`) and `training_progress` (the progress bar and the line per epoch on the terminal)."""

from hacnn_tf.callbacks.reid_evaluation import ReIDEvaluation
from hacnn_tf.callbacks.training import (
    CHECKPOINT_INFO,
    MODEL_FILE,
    STAGING_PREFIX,
    STATE_FILE,
    AtomicModelCheckpoint,
    Backup,
    BackupError,
    EpochBackup,
    LearningRateLogger,
    checkpoint_info,
    clean_backups,
    committed_backups,
    latest_backup,
    read_backup,
    restore_backup,
    write_backup,
)
from hacnn_tf.callbacks.training_log import TrainingLog
from hacnn_tf.callbacks.training_progress import TrainingProgress

__all__ = [
    "AtomicModelCheckpoint",
    "Backup",
    "BackupError",
    "CHECKPOINT_INFO",
    "EpochBackup",
    "LearningRateLogger",
    "MODEL_FILE",
    "ReIDEvaluation",
    "STAGING_PREFIX",
    "STATE_FILE",
    "TrainingLog",
    "TrainingProgress",
    "checkpoint_info",
    "clean_backups",
    "committed_backups",
    "latest_backup",
    "read_backup",
    "restore_backup",
    "write_backup",
]
