"""The suite-wide check that department staff never receive a reporter's identity.

Every response an inspector or department head gets anywhere in the suite is kept (through `Api`), and so is
every identity value the suite creates (reporter ids and openids at login, query codes at submission, callers'
names and phones). At the end of the session `tests/conftest.py` scans the one against the other and fails the run
on any hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEPARTMENT_ROLES = {"inspector", "department_head"}


@dataclass
class IdentityScan:
    secrets: set[str] = field(default_factory=set)
    bodies: list[tuple[str, str]] = field(default_factory=list)  # (request line, response text)

    def leaks(self) -> list[tuple[str, str]]:
        found = []
        for request, body in self.bodies:
            for secret in self.secrets:
                if secret in body:
                    found.append((request, secret))
        return found


SCAN = IdentityScan()
