"""Weight import from other implementations of HA-CNN."""

from hacnn_tf.convert.torchreid import from_torchreid, load_torchreid_state_dict, load_torchreid_weights

__all__ = ["from_torchreid", "load_torchreid_state_dict", "load_torchreid_weights"]
