"""Shapes shared by workflows, activities and the starter.

Everything here is pure (no I/O) so that workflow code can import it inside Temporal's sandbox.
Field names are DataSync's (botocore `datasync` 2018-11-09) wherever the API defines them.
"""

from collections.abc import Iterator
from typing import Any, get_args

from pydantic import BaseModel


def build_models() -> None:
    """Build now the validators of every model defined so far.

    Every model is declared with `defer_build=True`: its validator is built when it is first
    used, so that a process (a CLI command) pays only for the few models it uses. Code in
    Temporal's sandbox must not be that first user (the sandbox's modules cannot resolve the
    models' annotations), so each workflow module calls this as it is imported, outside it; nor
    should two threads be at once, so a batch calls it before its rows' threads start.
    """
    built: set[type[BaseModel]] = set()
    pending = [BaseModel]
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        _build(model, built)


def _build(model: type[BaseModel], built: set[type[BaseModel]]) -> None:
    """The models its fields hold first, so that its own build uses theirs, not builds them
    again inside it."""
    if model in built or not model.model_config.get("defer_build"):
        return
    built.add(model)
    for field in model.__pydantic_fields__.values():
        for held in _models_in(field.annotation):
            _build(held, built)
    if not model.__pydantic_complete__:
        model.model_rebuild()


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from _models_in(argument)
