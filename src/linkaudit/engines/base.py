"""What every engine offers: the one interface through which linkaudit runs SQL.

SQL arrives as DuckDB-dialect text built by pure functions (`link.sql`, `link.blocking`,
`audit.compile`, ...). The DuckDB engine runs it as it is; the Spark engine transpiles it
(`engines.spark_sql.to_spark`). Tables are named, created from a SELECT (`create`) or from a
polars frame (`put`), and read back as rows, one value or a polars frame.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # frames cross this interface; the interface itself needs no polars
    import polars as pl


class Engine(Protocol):
    name: str

    def run(self, sql: str, params: list[Any] | None = None) -> None: ...

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]: ...

    def row(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None: ...

    def value(self, sql: str, params: list[Any] | None = None) -> Any: ...

    def frame(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame: ...

    def create(self, name: str, select_sql: str, temp: bool = False) -> None: ...

    def drop(self, name: str) -> None: ...

    def has_table(self, name: str) -> bool: ...

    def columns(self, name: str) -> list[str]: ...

    def column_types(self, name: str) -> dict[str, str]:
        """Column -> type, in DuckDB's type names on every engine."""
        ...

    def put(self, name: str, frame: pl.DataFrame) -> None: ...

    def register(self, name: str, frame: pl.DataFrame) -> None: ...

    def unregister(self, name: str) -> None: ...

    def registered(self, name: str, frame: pl.DataFrame) -> AbstractContextManager[None]: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def check(self, sql: str) -> None:
        """Bind a statement without running it (names and types); raises the engine's error."""
        ...

    def forbid_file_access(self) -> None:
        """Turn off, for the rest of the session, every way SQL can read or write a file
        (rule SQL runs after this)."""
        ...

    def close(self) -> None: ...


__all__ = ["Engine", "FrameRegistry"]


class FrameRegistry(ABC):
    """`registered` for any engine with register/unregister (mixed into both engines)."""

    @abstractmethod
    def register(self, name: str, frame: pl.DataFrame) -> None: ...

    @abstractmethod
    def unregister(self, name: str) -> None: ...

    @contextlib.contextmanager
    def registered(self, name: str, frame: pl.DataFrame) -> Iterator[None]:
        """The frame visible to queries as `name` inside the block."""
        self.register(name, frame)
        try:
            yield
        finally:
            self.unregister(name)
