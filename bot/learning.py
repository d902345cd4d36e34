"""Learning from agents in Slack: "Save as FAQ" on a resolved card, suggested entries, the modal.

A resolved card's "Save as FAQ" (and each suggestion of `/baton faq suggest` or the Home tab)
opens a modal prefilled with the customer's question and the agent's answer
(`handoff.learning.draft`); submitting it adds the entry, which answers from the next
question on, records the episode as saved and audits the change. Only people of Baton's own
team may save or dismiss. Bad input (an empty question or answer) is shown in the modal and
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot import cards
from bot.admin import SUGGESTIONS_SHOWN, entry_id, suggested
from bot.app import Baton
from bot.bridge import now, outgoing_in
from bot.render import mrkdwn, unescape
from handoff import handoffs, learning, tuning
from handoff.conversation import Place
from handoff.learning import Draft, Outcome
from handoff.tuning import Change
from models.kb import Entry, KbError

log = logging.getLogger("baton.learning")
Ack = Callable[..., Awaitable[Any]]
NOT_STAFF = "Only people on the support team can save FAQ entries."
NOTHING_TO_SAVE = "There is nothing to save here: no agent answered the customer in this conversation."


class Learning:
    """The listeners that turn agents' answers into FAQ entries, for one `Baton`."""

    def __init__(self, baton: Baton) -> None:
        self.baton = baton
        self.db = baton.services.db
        self._saving = asyncio.Lock()  # two agents' modals for one answer: one entry, not two

    async def is_staff(self, team: str | None) -> bool:
        """Whether a person of `team` belongs to Baton's own team."""
        return team == (await self.baton.whoami()).team_id

    def draft_of(self, value: str) -> Draft | None:
        """The draft a button value or modal names."""
        channel, thread_ts, episode = cards.read_target(value)
        if not (channel and thread_ts and episode.isdigit()):
            return None
        return learning.episode_draft(self.db, (channel, thread_ts), int(episode))

    def suggestions(self) -> tuple[cards.Suggested, ...]:
        """The suggested entries, newest first."""
        return suggested(learning.suggestions(self.db, SUGGESTIONS_SHOWN))

    # -- listeners -------------------------------------------------------------------------------
    async def open_modal(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient, respond: Ack) -> None:
        """ "Save as FAQ": open the modal at once (Slack's trigger expires in 3 seconds)."""
        await ack()
        user, action = body.get("user") or {}, (body.get("actions") or [{}])[0]
        if not await self.is_staff(user.get("team_id")):
            await respond(**cards.ephemeral(NOT_STAFF))
            return
        value = str(action.get("value") or "")
        found = self.draft_of(value)
        if found is None:
            await respond(**cards.ephemeral(NOTHING_TO_SAVE))
            return
        saved = learning.saved_as(self.db, found.key, found.episode)
        if saved is not None:
            already = cards.ephemeral(f"This answer is already FAQ entry `{saved}`.")
            await respond(**already)
            return
        view = cards.save_faq_modal(unescape(found.question), unescape(found.answer), value)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The modal was submitted: add the entry, or show in the modal what is wrong."""
        user = body.get("user") or {}
        if not await self.is_staff(user.get("team_id")):
            await ack(response_action="errors", errors={cards.FAQ_INPUTS[0]: NOT_STAFF})
            return
        question, alternates, answer = cards.read_faq_modal((view.get("state") or {}).get("values") or {})
        errors = missing(question, answer)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        value = str(view.get("private_metadata") or "")
        async with self._saving:
            found = self.draft_of(value)
            saved = learning.saved_as(self.db, found.key, found.episode) if found else None
            if saved is not None:
                told = f"This answer was saved meanwhile as FAQ entry `{saved}`."
                await ack(response_action="errors", errors={cards.FAQ_INPUTS[0]: told})
                return
            knowledge = self.baton.services.knowledge
            taken = {e.id for e in knowledge.entries()}
            entry = Entry(entry_id(question, taken), question, mrkdwn(answer), alternates)
            try:
                await asyncio.to_thread(knowledge.upsert, entry, user["id"], "agents")
            except KbError as exc:
                await ack(response_action="errors", errors={cards.FAQ_INPUTS[0]: str(exc)})
                return
            await ack()
            self.remember(entry, found, user["id"])

    def remember(self, entry: Entry, found: Draft | None, who: str) -> None:
        """Mark the episode saved, audit the new entry, and say so in the card's thread."""
        at = now()
        with self.db.atomic():
            tuning.record(self.db, Change("faq", None, entry.id, who, at))
            if found is not None:
                learning.mark(self.db, found, Outcome.SAVED, who, at, entry.id)
        log.info("FAQ entry %s saved from an agent's answer by %s", entry.id, who)
        conversation = handoffs.load(self.db, *found.key) if found else None
        if found is not None and conversation is not None and conversation.card is not None:
            key = f"saved:{found.channel}:{found.thread_ts}:{found.episode}"
            note = {"text": cards.saved_note(entry.id, who)}
            where = Place(conversation.card.channel, conversation.card.ts)
            self.baton.spawn(self.baton.courier.send(outgoing_in(key, where, note, "note")), entry=entry.id)

    async def dismiss(self, ack: Ack, body: dict[str, Any], respond: Ack) -> None:
        """ "Dismiss" on a suggestion: it is not listed again."""
        await ack()
        user, action = body.get("user") or {}, (body.get("actions") or [{}])[0]
        if not await self.is_staff(user.get("team_id")):
            await respond(**cards.ephemeral(NOT_STAFF))
            return
        found = self.draft_of(str(action.get("value") or ""))
        if found is not None:
            learning.mark(self.db, found, Outcome.DISMISSED, user["id"], now(), None)
        await respond(**cards.suggestions(self.suggestions()), replace_original=True)


def missing(question: str, answer: str) -> dict[str, str]:
    """What the modal must say about empty fields (nothing when both are filled)."""
    question_id, _, answer_id = cards.FAQ_INPUTS
    errors = {question_id: "Write the question as a customer would ask it."} if not question else {}
    return errors | ({answer_id: "Write the answer Baton should give."} if not answer else {})
