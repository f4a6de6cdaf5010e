"""Record: a base for small immutable value classes, lighter than dataclasses.

The modules the daemon keeps loaded avoid `dataclasses` and `typing` at run
time: importing them (with inspect, ast, dis and the rest they pull in) costs
more memory than all of shrinkd's own code. A Record subclass lists its
fields in __slots__ and sets them in __init__; equality, hashing, repr and
replace() come from the slots. Records are not changed after __init__.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Tuple, TypeVar

    R = TypeVar("R", bound="Record")


class Record:
    __slots__: Tuple[str, ...] = ()

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, Record) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return type(self)(**values)
