"""The one shape of generated emails, shared by the factories and the bulk loader.

``<user name>.<number>@<reserved domain>``: numbers only go up within a session and start
above every number already present in ``users``, so generated emails never collide with each
other, with earlier runs, or with hand-made addresses.
"""

from __future__ import annotations

import random
import re

from sqlalchemy import text
from sqlalchemy.orm import Session

# RFC 2606 reserves these domains: generated addresses can never reach a real person.
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
# Matches the generated shape in PostgreSQL; the group is the number. `[0-9]+@` only matches
# right before the `@`, so the group is exactly the number a generator put there.
EMAIL_NUMBER_SQL_PATTERN = r"\.([0-9]+)@example\.(?:com|org|net)$"
_NEXT_NUMBER_KEY = "scenarios.next_email_number"
_UNSAFE_USER_NAME_CHARACTERS = re.compile(r"[^a-z0-9_.]+|\.{2,}")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Common English first and last names, for user names made without importing Faker. One
# string each reads better than a hundred one-word lines.
FIRST_NAMES = _words(
    "james mary robert patricia john jennifer michael linda david elizabeth william barbara "
    "richard susan joseph jessica thomas sarah charles karen christopher lisa daniel nancy "
    "matthew betty anthony sandra mark margaret donald ashley steven kimberly andrew emily "
    "paul donna joshua michelle kenneth carol kevin amanda brian melissa george deborah "
    "timothy stephanie ronald rebecca jason sharon edward laura jeffrey cynthia ryan amy"
)
LAST_NAMES = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter "
    "roberts gomez phillips evans turner diaz parker cruz edwards collins reyes stewart"
)
_USER_NAME_FORMATS = ("{f}.{l}", "{f}{l}", "{i}{l}", "{f}_{l}", "{l}.{f}", "{f}.{j}.{l}")


def email_address(user_name: str, number: int) -> str:
    """The generated address for ``user_name`` and ``number``."""
    return f"{user_name}.{number}@{EMAIL_DOMAINS[number % len(EMAIL_DOMAINS)]}"


def clean_user_name(raw: str) -> str:
    """``raw`` lower-cased and reduced to characters that are safe in an email's local part."""
    cleaned = _UNSAFE_USER_NAME_CHARACTERS.sub("", raw.lower()).strip(".")
    return cleaned or "user"


def user_names(count: int, *, seed: int = 2020) -> list[str]:
    """``count`` distinct realistic user names (``jane.doe``, ``jdoe``, ...), fixed per seed.

    Lower-case letters, dots and underscores only: no digit can blur the number that
    generated emails append.

    Raises:
        ValueError: ``count`` is more than the names and formats can combine into.
    """
    if count > len(FIRST_NAMES) * len(LAST_NAMES) * 2:
        raise ValueError(f"at most {len(FIRST_NAMES) * len(LAST_NAMES) * 2} user names")
    # Not for security: a seeded generator makes the same names on every run.
    rng = random.Random(seed)  # noqa: S311
    names: dict[str, None] = {}
    while len(names) < count:
        first, last, other = (
            rng.choice(FIRST_NAMES),
            rng.choice(LAST_NAMES),
            rng.choice(FIRST_NAMES),
        )
        fmt = rng.choice(_USER_NAME_FORMATS)
        names[fmt.format(f=first, l=last, i=first[0], j=other[0])] = None
    return list(names)


def highest_email_number(session: Session) -> int:
    """The largest number in an existing generated-shape email of ``users``, or 0."""
    statement = text(
        "SELECT coalesce(max(substring(email FROM :pattern)::numeric), 0) FROM users "
        "WHERE email ~ :pattern"
    )
    return int(session.execute(statement, {"pattern": EMAIL_NUMBER_SQL_PATTERN}).scalar_one())


def next_email_number(session: Session) -> int:
    """The smallest email number ``session`` may still use (the first call reads ``users``)."""
    number = session.info.get(_NEXT_NUMBER_KEY)
    if number is None:
        number = session.info[_NEXT_NUMBER_KEY] = highest_email_number(session) + 1
    return int(number)


def claim_email_numbers(session: Session, count: int, *, at_least: int = 0) -> int:
    """Reserve ``count`` consecutive email numbers in ``session``, from ``at_least`` or above.

    Returns:
        The first reserved number.
    """
    first = max(next_email_number(session), at_least)
    session.info[_NEXT_NUMBER_KEY] = first + count
    return first
