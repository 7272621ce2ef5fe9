"""How many examples a property test tries. A property test names the count it wants in a thorough run
(`@settings(max_examples=examples(500))`); the Hypothesis profile loaded by tests/conftest.py scales it: the
`ci` profile (300 examples by default) runs the full count, the quick `dev` profile (50) a sixth of it.
A literal count in a decorator would hold in both profiles and make the quick loop as slow as CI
(tests/unit/test_test_layout.py refuses one)."""
from __future__ import annotations

from hypothesis import settings

THOROUGH_DEFAULT = 300  # the `ci` profile's max_examples, registered in tests/conftest.py
FEWEST = 10


def examples(thorough: int, profile: settings | None = None) -> int:
    """`thorough` scaled by the profile's max_examples (the loaded one unless given) against the `ci` one's."""
    return max(FEWEST, round(thorough * (profile or settings.default).max_examples / THOROUGH_DEFAULT))
