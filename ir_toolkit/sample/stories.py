"""The stories the sample tenant can tell (``sample make --story NAME``): a registry.

Every story shares the tenant (people, services, the traveller, the switchers, the backup app, the
spray) and differs in its intruder. An entry names:

* ``NAME`` and ``DESCRIPTION`` (the responder's words);
* ``actor_day``: ``(story, day, day_no, active) -> (events, unlogged)``: the intruder's logged events of
  one day (:class:`ir_toolkit.sample.activity.Event`, each actor event with its answer-key ``actor``
  meta) and the number of its reads the log left out;
* ``cover_up``: whether the token-forgery intruder's cover-up (deleted reads, a hiding rule) follows;
* ``writers``: ``(out, story, gz) -> {kind: writer}`` for event kinds of its own (a writer has
  ``add(record)`` and ``close() -> list[Path]``), or None when its events use the shared families
  (``signin_*``, ``directory``, ``ual``); a writer for a shared family replaces the shared one;
* ``answer`` (optional): ``(story, key_doc) -> {field: value}`` merged into the answer key (what the story proves or
  cannot, beyond the written records); a ``decoys_extra`` list is added to its ``decoys``, and the shared
  decoys whose kind ``decoys_drop`` names (they describe another intruder) are left out.

Actor records that are not mailbox access (a directory write) carry answer-key meta too: they are listed
in the key's ``actor_writes`` with their ``record_id`` and count in its window and actor addresses.

A new story is one module and one entry here.
"""

from __future__ import annotations

from typing import Any

from ir_toolkit.sample import story_actor_token, story_golden_saml
from ir_toolkit.sample.actor import actor_day as forged_token_day
from ir_toolkit.sample.story_app_abuse import app_abuse_answer, app_abuse_day

DEFAULT_STORY = "token-forgery"

STORIES: dict[str, dict[str, Any]] = {
    "token-forgery": {
        "NAME": "token-forgery",
        "DESCRIPTION": "Storm-0558: tokens signed with a stolen key read targeted mailboxes; no sign-in issued them.",
        "actor_day": forged_token_day,
        "cover_up": True,
        "writers": None,
    },
    "actor-token": {
        "NAME": "actor-token",
        "DESCRIPTION": "CVE-2025-55241: unsigned impersonation tokens on an Exchange Online actor token write to the "
                       "directory as the Global Administrator (a credential, a certificate, a role); reads leave no "
                       "record.",
        "actor_day": story_actor_token.actor_day,
        "cover_up": False,
        "writers": None,
        "answer": story_actor_token.answer,
    },
    "app-abuse": {
        "NAME": "app-abuse",
        "DESCRIPTION": "Midnight Blizzard: a sprayed account adds a secret and full_access_as_app to a dormant app, "
                       "which then reads mailboxes app-only over EWS from residential proxies.",
        "actor_day": app_abuse_day,
        "cover_up": False,
        "writers": None,
        "answer": app_abuse_answer,
    },
    "golden-saml": {
        "NAME": "golden-saml",
        "DESCRIPTION": "Solorigate: a stolen AD FS signing key; forged SAML sign-ins of target users from new "
                       "addresses that AD FS never issued, then mail reads; every ordinary sign-in is federated.",
        "actor_day": story_golden_saml.actor_day,
        "cover_up": False,
        "writers": story_golden_saml.writers,
        "answer": story_golden_saml.answer,
    },
}
