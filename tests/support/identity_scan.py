"""The suite-wide check that department staff and the public never receive a reporter's identity.

Every response an inspector or department head gets anywhere in the suite is kept (through `Api`), and so is
every identity value the suite creates (reporter ids and openids at login, query codes at submission, callers'
names and phones). Every answer to a GET of a public route (the exposure board, Open311) is kept too, and checked
also against the exact coordinates reports were submitted with, their numbers, addresses and descriptions (an
Open311 POST answers the partner that filed the report, not the public). At the end of the session
`tests/conftest.py` scans the one against the other and fails the run on any hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEPARTMENT_ROLES = {"inspector", "department_head"}


@dataclass
class IdentityScan:
    secrets: set[str] = field(default_factory=set)
    bodies: list[tuple[str, str]] = field(default_factory=list)  # (request line, response text)
    # Exact points reports were submitted with (as text, at 4 decimals and more): never in a public response.
    coordinates: set[str] = field(default_factory=set)
    # What staff may see but the public may not: report numbers, addresses, the reporters' own descriptions.
    not_public: set[str] = field(default_factory=set)
    public_bodies: list[tuple[str, str]] = field(default_factory=list)

    def leaks(self) -> list[tuple[str, str]]:
        return _hits(self.bodies, self.secrets)

    def public_leaks(self) -> list[tuple[str, str]]:
        return _hits(self.public_bodies, self.secrets | self.coordinates | self.not_public)


def _hits(bodies: list[tuple[str, str]], secrets: set[str]) -> list[tuple[str, str]]:
    return [(request, secret) for request, body in bodies for secret in secrets if secret in body]


PUBLIC_PREFIXES = ("/v1/public/", "/open311/")


SCAN = IdentityScan()
