"""The people service's consumer: every service's report of its part of an erasure.

Group ``people`` reads ``rhythm.privacy.v1``; each event type maps to its handler in
:data:`rhythm_people.handlers.EVENT_HANDLERS` (the people service publishes the directory; it
consumes no people events).
"""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_people import handlers
from rhythm_people.adapters.unit_of_work import PeopleRuntime
from rhythm_shared.contracts import topics
from rhythm_shared.kit.consumer import ConsumerSpec

GROUP = "people"


def consumers(runtime: PeopleRuntime) -> Sequence[ConsumerSpec]:
    return [ConsumerSpec(group=GROUP, topics=[topics.PRIVACY], handlers=handlers.EVENT_HANDLERS)]
