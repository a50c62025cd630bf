"""Reads `.keras` files whose weights are stored in the layout of `HACNN` before the backbone/task split.

Keras stores a model's variables under the path of the attributes that reach them (`stem/conv/vars/0`,
`global_blocks/container/inception_a/...`); versions 0.1.0 and 0.2 held every layer as an attribute of one
subclassed `HACNN`, so their files put a layer where that class's attributes and its `layers` list reached it. The
split moved the layers into `HACNNBackbone`, under `backbone/layers/...`. `redirect_legacy_store` answers the
loader's requests for the new paths with the old ones, variable by variable, and the optimizer's slots in the order
the old model listed its trainable variables.
"""

from __future__ import annotations

import keras
from keras.src.saving import saving_lib
from keras.src.utils import naming

# A group only the old layout has at the top of the file, and one only the new layout has.
_LEGACY_MARKER = "global_fc"
_NEW_MARKER = "backbone"


class _PathRecorder(saving_lib.H5IOStore):
    """A write-only stand-in for Keras' weights store that records where the saving walk puts each variable:
    `{id(variable): (path, key)}`."""

    def __init__(self):  # no file behind it: the base class would open one
        self.paths: dict[int, tuple[str, str]] = {}
        self._path = ""

    def __bool__(self):
        return True

    def make(self, path, metadata=None):
        self._path = path
        return self

    def __setitem__(self, key, value):
        self.paths[id(value)] = (self._path, key)

    def close(self):
        pass


def saved_paths(saveable, inner_path: str = "") -> dict[int, tuple[str, str]]:
    """`{id(variable): (path, key)}`: where Keras' saving puts each variable of `saveable` (a model, layer or
    optimizer) when it is saved at `inner_path`."""
    recorder = _PathRecorder()
    saving_lib._save_state(saveable, recorder, None, inner_path, set())
    return recorder.paths


def _unique(name: str, used: dict[str, int]) -> str:
    """Keras' naming of a list's items: the first `name`, then `name_1`, `name_2`, ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _snake(layer) -> str:
    return naming.to_snake_case(type(layer).__name__)


def legacy_layers(model) -> list[keras.layers.Layer]:
    """The old `HACNN`'s layers in the order it created them (its `layers` list, and its trainable variables'
    order): preprocessing, stem, per level Inception-A, Inception-B and attention, the global head, then the
    samplers, the local Inception-Bs and the local head."""
    order = [model.preprocessing, model.stem]
    for blocks, attention in zip(model.global_blocks, model.attentions):
        order += [*blocks, attention]
    order += [model.global_fc, model.global_bn, model.global_classifier]
    if model.learn_region:
        order += [*model.samplers, *model.local_blocks, model.local_fc, model.local_bn, model.local_classifier]
    return [layer for layer in order if layer is not None]


def legacy_prefixes(model) -> list[tuple[keras.layers.Layer, str]]:
    """`(layer, path)` of each of the old `HACNN`'s layers in its files: the attributes in Keras' (sorted) walk
    order `attentions`, `global_blocks`, `global_bn`, `global_classifier`, `global_fc`, then `layers` for the rest
    (a layer is stored where the walk first reaches it)."""
    placed = []
    used: dict[str, int] = {}
    placed += [(attention, f"attentions/{_unique(_snake(attention), used)}") for attention in model.attentions]
    used = {}
    for blocks in model.global_blocks:
        container = f"global_blocks/{_unique('container', used)}"
        inner: dict[str, int] = {}
        placed += [(block, f"{container}/{_unique(_snake(block), inner)}") for block in blocks]
    for name in ("global_bn", "global_classifier", "global_fc"):
        if getattr(model, name) is not None:
            placed.append((getattr(model, name), name))
    done = {id(layer) for layer, _ in placed}
    used = {}
    for layer in legacy_layers(model):
        name = _unique(_snake(layer), used)
        if id(layer) not in done:
            placed.append((layer, f"layers/{name}"))
    return placed


def _optimizer_index_map(model, legacy_order: list) -> dict[str, str]:
    """`{new index: old index}` of the optimizer's variables: the slots of each trainable variable where an
    optimizer built over the old variable order keeps them; the others (iterations, learning rate) in place."""
    optimizer = model.optimizer
    twin = type(optimizer).from_config(optimizer.get_config())
    twin.build(legacy_order)
    if len(twin.variables) != len(optimizer.variables):
        raise ValueError(
            f"The optimizer has {len(optimizer.variables)} variables, one built over the legacy layout "
            f"{len(twin.variables)}: cannot map its slots"
        )
    new_index = {id(v): i for i, v in enumerate(optimizer.variables)}
    old_index = {id(v): i for i, v in enumerate(twin.variables)}
    count = len(model.trainable_variables)
    mapping = {}
    for attribute, slots in vars(optimizer).items():
        twin_slots = getattr(twin, attribute, None)
        if not (isinstance(slots, list) and len(slots) == count and all(id(s) in new_index for s in slots)):
            continue
        for variable in model.trainable_variables:
            slot = slots[optimizer._get_variable_index(variable)]
            twin_slot = twin_slots[twin._get_variable_index(variable)]
            mapping[new_index[id(slot)]] = old_index[id(twin_slot)]
    unmapped_new = [i for i in range(len(optimizer.variables)) if i not in mapping]
    unmapped_old = sorted(set(range(len(twin.variables))) - set(mapping.values()))
    mapping.update(zip(unmapped_new, unmapped_old))
    return {str(new): str(old) for new, old in mapping.items()}


def legacy_table(model) -> dict[str, dict[str, tuple[str, str]]]:
    """`{new path: {new key: (old path, old key)}}` for every variable of `model` (and of its built optimizer)."""
    old = {}
    for layer, prefix in legacy_prefixes(model):
        old.update(saved_paths(layer, prefix))
    table: dict[str, dict[str, tuple[str, str]]] = {}
    optimizer = getattr(model, "optimizer", None)
    for variable_id, (path, key) in saved_paths(model).items():
        if path == "optimizer":  # its values, not its variables, go to the store; mapped by index below
            continue
        if variable_id not in old:
            raise ValueError(f"No place in the legacy HACNN layout for the variable saved at {path}/{key}")
        table.setdefault(path, {})[key] = old[variable_id]
    if optimizer is not None and optimizer.variables:
        legacy_order = [v for layer in legacy_layers(model) for v in layer.trainable_variables]
        table["optimizer"] = {new: ("optimizer", old) for new, old in _optimizer_index_map(model, legacy_order).items()}
    return table


def is_legacy_store(store) -> bool:
    """Whether `store` (the loader's weights store, as the model's own `load_own_variables` receives it) holds a
    file of the old layout."""
    has_path = getattr(store, "has_path", None)
    return has_path is not None and has_path(_LEGACY_MARKER) and not has_path(_NEW_MARKER)


def redirect_legacy_store(model, store) -> None:
    """Makes the loader read the variables of `model` from the old layout when `store` holds a legacy file.

    Keras hands the model's `load_own_variables` the weights store itself (the root entry) before it walks the
    model; from then on its requests for a new path get a mapping of the new keys to the values stored at the old
    paths. Does nothing for files of the new layout.
    """
    if not is_legacy_store(store):
        return
    table = legacy_table(model)
    read = store.get

    def get(path):
        values = {}
        for key, (old_path, old_key) in table.get(path, {}).items():
            values[key] = read(old_path)[old_key]
        return values

    def has_path(path):
        return any(name == path or name.startswith(f"{path}/") for name in table)

    store.get = get
    store.has_path = has_path
