"""The torchreid reference (optional `torch`/`test`/`bench` extras), for parity tests and benchmarks.

`torchreid==0.2.5`'s package `__init__` imports its whole data stack (scipy, torchvision, gdown...), none of which
the reference model or metrics need; the reference files are plain modules, so they are loaded on their own.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types


def _torchreid_root() -> pathlib.Path:
    spec = importlib.util.find_spec("torchreid")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("torchreid==0.2.5 is not installed: `pip install -e .[test]` (or `.[bench]`) installs it")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def load_torchreid_module(relative_path: str) -> types.ModuleType:
    """Loads one file of the installed torchreid package (e.g. `reid/models/hacnn.py`) as a standalone module."""
    name = "torchreid_reference_" + relative_path.replace("/", "_").removesuffix(".py")
    if name in sys.modules:
        return sys.modules[name]
    path = _torchreid_root() / relative_path
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def randomize_torch_module(module, seed: int = 0) -> None:
    """Random weights, biases and batch-norm statistics for every layer, and input-dependent hard attention.

    torchreid initialises the hard-attention fc weights to zero, which would make the regions constant; random
    weights here make the translations depend on the image, so the sampler's parity is tested for real.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, sub in module.named_modules():
            if isinstance(sub, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = sub.weight[0].numel()
                sub.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                sub.bias.normal_(0.0, 0.1, generator=generator)
                if name.endswith("hard_attn.fc"):
                    # Stripe-centre bias as torchreid initialises it, plus weights small enough not to saturate tanh.
                    sub.weight.normal_(0.0, 0.3 / fan_in**0.5, generator=generator)
                    sub.bias.mul_(0.2).add_(torch.tensor([0, -0.75, 0, -0.25, 0, 0.25, 0, 0.75]))
            elif isinstance(sub, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                sub.weight.uniform_(0.5, 1.5, generator=generator)
                sub.bias.normal_(0.0, 0.1, generator=generator)
                sub.running_mean.normal_(0.0, 0.2, generator=generator)
                sub.running_var.uniform_(0.5, 2.0, generator=generator)


def torchreid_hacnn(num_classes: int = 751, seed: int | None = 0, **kwargs):
    """torchreid's `HACNN` on the CPU in eval mode; with `seed`, randomised as `randomize_torch_module` does."""
    model = load_torchreid_module("reid/models/hacnn.py").HACNN(num_classes, use_gpu=False, **kwargs)
    if seed is not None:
        randomize_torch_module(model, seed)
    return model.eval()
