"""Architectures by name, from the libraries that build them: the ``ARCH_SOURCES`` registry.

``--arch`` names are the paper's five (alexnet, vgg16, inception_v3, resnet50, resnet101), any
torchvision classification model, ``timm:NAME`` for any timm model, or ``python:MODULE:CALLABLE``
for a model of your own. A source whose prefix a name carries builds it; names without a registered
prefix go to torchvision. Weights are always random: nothing is downloaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from slcbench.errors import SlcbenchError
from slcbench.paper import PAPER_ARCHS
from slcbench.registry import Registry


@dataclass(frozen=True)
class ArchSpec:
    """What to build: the name as given, the source that builds it, the source's model name, the input size."""

    name: str
    source: str
    model_name: str
    input_size: int


@dataclass(frozen=True)
class ArchSource:
    """A library that builds untrained classification models by name.

    Parameters
    ----------
    prefix : str
        How its names are written on the command line (``"timm:"``); ``""`` for the default source.
    input_size : callable
        ``model_name -> int``, the native input resolution; SlcbenchError for a name it does not know.
    build : callable
        ``model_name -> nn.Module`` with random weights, created on torch's current default device.
    classifier_outputs : int or None
        The output count its classifiers have by default (how the top layer is found when the model
        has no ``get_classifier()``); None: the model's last ``nn.Linear``.
    """

    prefix: str
    input_size: Callable[[str], int]
    build: Callable[[str], nn.Module]
    classifier_outputs: int | None = None


ARCH_SOURCES: Registry[ArchSource] = Registry("architecture source")


@lru_cache(maxsize=1)
def torchvision_models() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def _torchvision_input_size(model_name: str) -> int:
    if model_name not in torchvision_models():
        raise SlcbenchError(
            f"unknown architecture {model_name!r}; choose from {', '.join(PAPER_ARCHS)}, 'all', any torchvision "
            f"classification model (e.g. resnet18, vit_b_16), timm:NAME (e.g. timm:convnext_tiny) "
            f"or python:MODULE:CALLABLE"
        )
    # Inception-v3 was designed for (and in the paper run at) 299x299; the rest of the zoo at 224.
    return 299 if model_name == "inception_v3" else 224


def _torchvision_build(model_name: str) -> nn.Module:
    import torchvision

    # The auxiliary classifier would be a second head; init_weights silences a warning about its default.
    extra = {"aux_logits": False, "init_weights": True} if model_name in ("inception_v3", "googlenet") else {}
    return torchvision.models.get_model(model_name, weights=None, **extra)


def _timm_input_size(model_name: str) -> int:
    import timm

    if not timm.is_model(model_name):
        raise SlcbenchError(
            f'unknown timm model {model_name!r}; list them with python -c "import timm; print(timm.list_models())"'
        )
    config = timm.get_pretrained_cfg(model_name)
    return int(config.input_size[-1]) if config is not None and config.input_size else 224


def _timm_build(model_name: str) -> nn.Module:
    import timm

    return timm.create_model(model_name, pretrained=False)


def _python_callable(model_name: str) -> Callable[[], nn.Module]:
    module_name, _, attribute = model_name.partition(":")
    if not module_name or not attribute:
        raise SlcbenchError(f"python:{model_name}: write python:MODULE:CALLABLE, e.g. python:mymodels:make_net")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except ImportError as exc:
        raise SlcbenchError(f"python:{model_name}: cannot import {module_name} ({exc})") from None
    except AttributeError:
        raise SlcbenchError(f"python:{model_name}: {module_name} has no {attribute}") from None
    if not callable(factory):
        raise SlcbenchError(f"python:{model_name}: {attribute} is not callable")
    return factory


def _python_build(model_name: str) -> nn.Module:
    model = _python_callable(model_name)()
    if not isinstance(model, nn.Module):
        raise SlcbenchError(f"python:{model_name} returned {type(model).__name__}, not a torch.nn.Module")
    return model


ARCH_SOURCES.register("torchvision", ArchSource("", _torchvision_input_size, _torchvision_build, 1000))
ARCH_SOURCES.register("timm", ArchSource("timm:", _timm_input_size, _timm_build))
# A model of your own: CALLABLE() returns it; its input resolution is CALLABLE.input_size if set, else 224.
ARCH_SOURCES.register(
    "python", ArchSource("python:", lambda name: int(getattr(_python_callable(name), "input_size", 224)), _python_build)
)


def resolve_arch(name: str) -> ArchSpec:
    """The ArchSpec for one ``--arch`` name, or SlcbenchError naming the choices."""
    name = name.strip()
    prefixed = [
        (key, source) for key, source in ARCH_SOURCES.items() if source.prefix and name.startswith(source.prefix)
    ]
    key, source = prefixed[0] if prefixed else next((k, s) for k, s in ARCH_SOURCES.items() if not s.prefix)
    model_name = name[len(source.prefix) :]
    return ArchSpec(name=name, source=key, model_name=model_name, input_size=source.input_size(model_name))


def resolve_arch_list(spec: str) -> tuple[ArchSpec, ...]:
    """A comma list of architectures; ``all`` expands to the paper's five."""
    names: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        for name in PAPER_ARCHS if token.lower() == "all" else (token,):
            if name not in names:
                names.append(name)
    if not names:
        raise SlcbenchError("no architecture given: use e.g. --arch resnet50 or --arch all")
    return tuple(resolve_arch(n) for n in names)


def build_model(spec: ArchSpec, device: torch.device) -> nn.Module:
    """The untrained model in eval mode, parameters created directly on ``device`` (no CPU copy)."""
    with torch.device(device):
        model = ARCH_SOURCES.get(spec.source).build(spec.model_name)
    model.eval().requires_grad_(False)
    return model
