"""Per-account strategy state kept between decision epochs, as dense numpy columns."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray


class PerAccount:
    """Named columns indexed by account id, grown on demand.

    The engine numbers accounts ``0 .. n-1``, so dense arrays indexed by id are the
    fastest lookup (a gather, no hashing) and cost a few bytes per account per column.
    New rows take each column's fill value.
    """

    def __init__(self, **columns: tuple[DTypeLike, Any]):
        self._spec = columns
        self._cols: dict[str, NDArray[Any]] = {
            name: np.full(0, fill, dtype=dtype) for name, (dtype, fill) in columns.items()
        }
        self.size = 0

    def ensure(self, ids: NDArray[np.int64]) -> None:
        """Make room for every id in ``ids``."""
        if ids.size == 0:
            return
        if int(ids.min()) < 0:
            raise ValueError("account ids must be non-negative")
        top = int(ids.max()) + 1
        if top <= self.size:
            return
        new_size = max(top, self.size + self.size // 2)
        for name, (dtype, fill) in self._spec.items():
            grown = np.full(new_size, fill, dtype=dtype)
            grown[: self.size] = self._cols[name]
            self._cols[name] = grown
        self.size = new_size

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self._cols[name]
