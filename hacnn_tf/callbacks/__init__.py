"""Keras callbacks of a training run, in one place: `training` (atomic checkpoints, learning-rate log, the crash-safe
epoch backup) and `reid_evaluation` (Rank-k/mAP on a query/gallery split during `fit`)."""

from hacnn_tf.callbacks.reid_evaluation import ReIDEvaluation
from hacnn_tf.callbacks.training import (
    AtomicModelCheckpoint,
    Backup,
    BackupError,
    CHECKPOINT_INFO,
    EpochBackup,
    LearningRateLogger,
    MODEL_FILE,
    STAGING_PREFIX,
    STATE_FILE,
    checkpoint_info,
    clean_backups,
    committed_backups,
    latest_backup,
    read_backup,
    restore_backup,
    write_backup,
)

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
    "checkpoint_info",
    "clean_backups",
    "committed_backups",
    "latest_backup",
    "read_backup",
    "restore_backup",
    "write_backup",
]
