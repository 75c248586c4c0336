"""Load TOML config files into pydantic models and explain every problem by key, value and reason."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

# Values of keys whose name contains one of these are never echoed back.
_SECRET_MARKERS = ("password", "secret", "token", "key")


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, values are immutable after load."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file."""

    key: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"{self.key} = {self.value}: {self.problem}"


class ConfigError(Exception):
    """A config file could not be used; `problems` says what to fix."""

    def __init__(self, path: Path | str, problems: Sequence[ConfigProblem]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(self.report())

    def report(self) -> str:
        """Human-readable report: one line per problem."""
        lines = [f"config file {self.path} is not valid:"]
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


M = TypeVar("M", bound=BaseModel)


def _is_secret_key(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1].lower()
    return any(marker in leaf for marker in _SECRET_MARKERS) and not leaf.endswith(("_file", "_dir"))


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?P<at>@)", re.IGNORECASE)


def _redact(value: Any) -> Any:
    """Hide secret-named keys at any depth and passwords inside URLs."""
    if isinstance(value, dict):
        return {k: "(hidden)" if _is_secret_key(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<head>(hidden)\g<at>", value)
    return value


def _shown_value(key: str, value: Any) -> str:
    if value is _MISSING:
        return "(missing)"
    if key == "(file)":
        return "(whole file)"
    if _is_secret_key(key):
        return "(hidden)"
    return repr(_redact(value))


_MISSING = object()


def _lookup(data: Any, loc: Sequence[int | str]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:  # noqa: SIM114 - kept apart so mypy can narrow each type
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return _MISSING
    return data


def problems_from_validation(err: ValidationError, data: Any) -> list[ConfigProblem]:
    """Turn a pydantic ValidationError into key/value/problem triples."""
    problems = []
    for item in err.errors(include_url=False):
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        key = ".".join(str(p) for p in loc) or "(file)"
        if item["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling against the example in config/"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
        problems.append(ConfigProblem(key, _shown_value(key, _lookup(data, loc)), message))
    return problems


def parse_config(model: type[M], data: dict[str, Any], source: str = "(inline)", base_dir: Path | None = None) -> M:
    """Validate already-parsed config data against `model`; relative paths resolve against `base_dir`."""
    try:
        return model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(source, problems_from_validation(err, data)) from None


def load_config(model: type[M], path: Path | str) -> M:
    """Read a TOML file and validate it; raise ConfigError naming each bad key."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem("(file)", str(path), "file not found")]) from None
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem("(file)", str(path), f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, [ConfigProblem("(file)", str(path), "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [ConfigProblem("(file)", str(path), f"not valid TOML: {exc}")]) from None
    return parse_config(model, data, str(path), base_dir=path.resolve().parent)
