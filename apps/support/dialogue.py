"""The support bot's conversation: one customer message in, the bot's messages out.

:class:`SupportBot` reads each message through an understanding source (``SupportNLU`` or
any callable/object giving an :class:`~apps.support.understanding.Understanding`), keeps
per-sender state (turns, current intent, slots, failed turns) in a
:class:`ConversationStore` (memory here, SQL in :mod:`apps.support.store`), and decides:

- out of scope: say what the bot can help with (not English: say it works in English);
- ambiguous or unsure: offer the top two intents as buttons, or a rephrase;
- a flow that needs details (:data:`FLOWS`): ask for each missing slot, filled from the
  entities of any later message;
- otherwise: the answer from an :class:`Answers` source, with its source and score;
- a human on request, after :data:`MAX_FAILURES` failed turns in a row, or on strongly
  negative sentiment: a handoff with the transcript and, when a summarization model is
  installed, its summary.

No Streamlit here: the CLI, the HTTP API and the page share this module.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from apps.support.understanding import IntentScore, Understanding

log = logging.getLogger(__name__)

__all__ = [
    "DUPLICATE_SECONDS",
    "FLOWS",
    "HANDOFF_INTENTS",
    "INTENT_MODEL",
    "LOW_CONFIDENCE",
    "MAX_FAILURES",
    "NEGATIVE_HANDOFF",
    "NOT_ENGLISH",
    "SCOPE",
    "SUMMARY_MODEL",
    "Answers",
    "BotMessage",
    "ConversationState",
    "ConversationStore",
    "Handoff",
    "MemoryStore",
    "Slot",
    "SupportBot",
    "answer_caption",
    "build_support_bot",
    "entity_caption",
    "flow_caption",
    "is_handoff_request",
    "load_handoff_phrases",
    "load_summarizer",
    "readable_intent",
    "warn_unknown_faq_intents",
]

#: Intents confirmed (buttons) rather than acted on when the top one is below this.
LOW_CONFIDENCE = 0.5
#: Failed turns in a row (out of scope, unsure, no answer) that hand over to a person.
MAX_FAILURES = 2
#: ``Sentiment.negative_strength`` at or above which the bot hands over to a person.
NEGATIVE_HANDOFF = 0.75
#: The same text from the same sender within this many seconds is one message.
DUPLICATE_SECONDS = 5.0
#: Intents that ask for a person (an intent model trained with one hands over on it).
HANDOFF_INTENTS = frozenset({"human_handoff", "talk_to_human", "speak_to_agent", "agent_request"})
#: Where the handoff summarizer is looked for.
SUMMARY_MODEL = "data/models/dialogsum-summarizer"
#: Handoff phrases shipped with the FAQ.
HANDOFF_PHRASES = "data/support/handoff_phrases.txt"

SCOPE = (
    "I can only help with questions about your Lepton account: cards, payments, transfers, "
    "top-ups, exchange rates, fees and security. Could you ask about one of those?"
)
NOT_ENGLISH = (
    "Sorry, I can only read and answer English. Please write your message in English; if you "
    "can't, write again and I will pass you to a colleague."
)
NO_SUMMARY = (
    "No summary model is installed (data/models/dialogsum-summarizer is missing); "
    "read the transcript."
)


class Answers(Protocol):
    """What the bot needs of an answer source (``apps.support.answers.AnswerFinder``).

    ``find(question, intent=...)`` returns an object with ``text``, ``source``, ``score``,
    ``kind`` (and ``to_dict()``), or None when nothing answers the question; ``intent`` is the
    intent the bot understood, which an answer source may use to pick the entry.
    """

    def find(self, question: str, intent: str | None = None) -> Any: ...


@runtime_checkable
class _Understands(Protocol):
    def understand(self, text: str) -> Understanding: ...


UnderstandingSource = Callable[[str], Understanding] | _Understands


@dataclass(frozen=True)
class Slot:
    """One detail a flow asks for."""

    name: str
    question: str
    labels: tuple[str, ...]
    """Entity labels that fill it (first found wins)."""
    fallback: str = ""
    """Regex over a reply to the slot's own question, when no entity filled it."""


#: Flows that need details before they can be answered: intent -> slots, in asking order.
FLOWS: dict[str, tuple[Slot, ...]] = {
    "lost_or_stolen_card": (
        Slot(
            "card",
            "Which card is it? Please give me the last 4 digits of the card number.",
            ("CARD_LAST4",),
            r"^\D*(\d{4})\D*$",
        ),
        Slot(
            "when",
            "When did you last have the card, or notice it was gone?",
            ("DATE",),
            r"^(.{1,60})$",
        ),
    ),
    "transfer_not_received_by_recipient": (
        Slot(
            "amount",
            "How much did you send?",
            ("AMOUNT",),
            r"^\D*?(\d+(?:[.,]\d{1,2})?)\D*$",
        ),
        Slot("date", "On which date did you make the transfer?", ("DATE",), r"^(.{1,60})$"),
    ),
    "request_refund": (
        Slot(
            "merchant",
            "Which shop or company is the refund from?",
            ("ORG",),
            r"^(.{1,60})$",
        ),
        Slot(
            "amount",
            "How much should be refunded?",
            ("AMOUNT",),
            r"^\D*?(\d+(?:[.,]\d{1,2})?)\D*$",
        ),
    ),
}


@dataclass
class BotMessage:
    """One message of the bot, as a Rasa REST channel sends it."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    """``[{"title", "payload"}]``; a payload ``/intent`` confirms that intent."""
    custom: dict[str, Any] | None = None
    """Extra data: the understanding, the answer's source and score, a handoff."""

    def to_rasa(self, recipient_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"recipient_id": recipient_id, "text": self.text}
        if self.buttons:
            out["buttons"] = [dict(b) for b in self.buttons]
        if self.custom:
            out["custom"] = self.custom
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BotMessage:
        return cls(data["text"], list(data.get("buttons") or []), data.get("custom"))


@dataclass
class Handoff:
    """A conversation passed to a person, with what the agent needs to pick it up."""

    sender: str
    reason: str
    transcript: str
    summary: str | None
    """The summarization model's summary; None when no model is installed (see ``note``)."""
    note: str = ""
    status: str = "open"
    """``open``, ``taken`` or ``closed``."""
    agent: str | None = None
    created: float = field(default_factory=time.time)
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ConversationState:
    """Everything the bot remembers of one sender; JSON-able (:meth:`to_dict`)."""

    sender: str
    turns: list[dict[str, Any]] = field(default_factory=list)
    """``{"speaker": "user"|"bot"|"agent", "text", "time"}``, oldest first."""
    intent: str | None = None
    """The flow under way (or the last intent answered)."""
    slots: dict[str, Any] = field(default_factory=dict)
    asking: str | None = None
    """The slot the bot just asked for."""
    question: str | None = None
    """The message that started the current flow (what answers are looked up with)."""
    failures: int = 0
    """Failed turns in a row."""
    offered: list[str] = field(default_factory=list)
    """Intents offered as buttons on the last turn."""
    handed_off: bool = False
    last_text: str | None = None
    last_time: float = 0.0
    last_replies: list[dict[str, Any]] = field(default_factory=list)
    message_ids: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Client message id -> the replies it got (kept for the last 50 ids)."""
    outbox: list[str] = field(default_factory=list)
    """Agent replies not yet delivered to the customer."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def transcript(self) -> str:
        names = {"user": "Customer", "bot": "Bot", "agent": "Agent"}
        return "\n".join(
            f"{names.get(t['speaker'], t['speaker'])}: {t['text']}" for t in self.turns
        )


class ConversationStore(Protocol):
    """Where conversations and their events live (:class:`MemoryStore`, the SQL store)."""

    def load(self, sender: str) -> ConversationState | None: ...

    def save(self, state: ConversationState) -> None: ...

    def add_event(self, sender: str, kind: str, data: dict[str, Any]) -> None: ...

    def open_handoff(self, handoff: Handoff) -> Handoff: ...

    def handoffs(self, status: str | None = "open") -> list[Handoff]: ...

    def get_handoff(self, handoff_id: int) -> Handoff | None: ...

    def update_handoff(self, handoff_id: int, **fields: Any) -> Handoff: ...


class MemoryStore:
    """Conversations in memory (lost on exit): for the terminal chat and tests."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._handoffs: dict[int, Handoff] = {}

    def load(self, sender: str) -> ConversationState | None:
        data = self.states.get(sender)
        return None if data is None else ConversationState.from_dict(data)

    def save(self, state: ConversationState) -> None:
        self.states[state.sender] = state.to_dict()

    def add_event(self, sender: str, kind: str, data: dict[str, Any]) -> None:
        self.events.append({"sender": sender, "kind": kind, "data": data, "time": time.time()})

    def open_handoff(self, handoff: Handoff) -> Handoff:
        handoff.id = len(self._handoffs) + 1
        self._handoffs[handoff.id] = handoff
        return handoff

    def handoffs(self, status: str | None = "open") -> list[Handoff]:
        return [h for h in self._handoffs.values() if status is None or h.status == status]

    def get_handoff(self, handoff_id: int) -> Handoff | None:
        return self._handoffs.get(handoff_id)

    def update_handoff(self, handoff_id: int, **fields: Any) -> Handoff:
        handoff = self._handoffs.get(handoff_id)
        if handoff is None:
            raise KeyError(f"No handoff {handoff_id}.")
        for key, value in fields.items():
            setattr(handoff, key, value)
        return handoff


def readable_intent(intent: str) -> str:
    """``lost_or_stolen_card`` -> ``Lost or stolen card``."""
    words = intent.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def load_handoff_phrases(path: str | Path = HANDOFF_PHRASES) -> list[str]:
    """The shipped phrases asking for a person, normalised; [] when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_normal(line) for line in lines if line.strip() and not line.startswith("#")]


_HUMAN = re.compile(
    r"\b(human|real person|actual person|live person|agent|operator|manager|member of staff|"
    r"someone from (your|the) (team|staff|customer service|bank)|customer service rep\w*)\b"
)
_ASK = re.compile(
    r"\b(speak|talk|chat|transfer me|put me through|connect me|get me|call me|want|need|like|let me)\b"
)


def is_handoff_request(text: str, phrases: list[str] = ()) -> bool:
    """True when ``text`` asks for a person: one of ``phrases`` (normalised), or a request
    verb with a word for a person."""
    said = _normal(text)
    if said in phrases:
        return True
    return bool(_HUMAN.search(said) and _ASK.search(said))


def load_summarizer(path: str | Path = SUMMARY_MODEL) -> Callable[[str], str] | None:
    """The dialogue summarizer on the core's summarization Predictor; None when the artifact
    is not installed (then handoffs carry the transcript only, and say so)."""
    path = Path(path)
    if not (path / "lepton_artifact.json").is_file():
        return None
    from lepton_nlp.inference import Predictor

    predictor = Predictor.from_artifact(path)

    def summarize(transcript: str) -> str:
        return predictor.predict([transcript])[0]["generated_text"]

    return summarize


def _understood(intent: str) -> Understanding:
    """The understanding of a button press: the customer confirmed ``intent``."""
    return Understanding(
        text=f"/{intent}",
        intent=intent,
        confidence=1.0,
        ranking=[IntentScore(intent, 1.0)],
        out_of_scope=False,
        ambiguous=False,
        reasons=["confirmed by the customer"],
    )


class SupportBot:
    """The support conversation over an understanding source and an answer source.

    Args:
        understanding: ``SupportNLU`` (anything with ``understand(text)``) or a callable
            ``text -> Understanding``.
        answers: an :class:`Answers` (``AnswerFinder``).
        store: where state and events are kept; default a :class:`MemoryStore`.
        summarizer: ``transcript -> summary`` for handoffs; None: no summary model.
        handoff_phrases: normalised phrases asking for a person (default: the shipped file).
        clock: seconds now (tests pass a fake).
    """

    def __init__(
        self,
        understanding: UnderstandingSource,
        answers: Answers,
        store: ConversationStore | None = None,
        summarizer: Callable[[str], str] | None = None,
        handoff_phrases: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if isinstance(understanding, _Understands):
            self._understand = understanding.understand
        elif callable(understanding):
            self._understand = understanding
        else:
            raise TypeError(
                "understanding must be a SupportNLU (with .understand(text)) or a callable "
                f"text -> Understanding, got {type(understanding).__name__}."
            )
        self.answers = answers
        self.store: ConversationStore = store if store is not None else MemoryStore()
        self.summarizer = summarizer
        self.phrases = load_handoff_phrases() if handoff_phrases is None else handoff_phrases
        self.clock = clock
        self._guard = threading.Lock()
        # sender -> [its lock, how many turns hold or wait for it]; an entry goes when its
        # last turn ends, so a server answering endless new senders does not keep one each
        # (the soak found this: one lock per conversation ever seen, for the process's life).
        self._senders: dict[str, list] = {}

    @contextmanager
    def _lock(self, sender: str) -> Iterator[None]:
        # One turn at a time per sender: the HTTP API answers requests on a thread pool.
        with self._guard:
            entry = self._senders.setdefault(sender, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._senders[sender]

    # --- the public surface ---------------------------------------------------------------

    def state(self, sender: str) -> ConversationState:
        """The sender's conversation (a new one when the sender is unknown)."""
        return self.store.load(sender) or ConversationState(sender)

    def understand(self, text: str) -> Understanding:
        return self._understand(text)

    def reply(self, sender: str, text: str, message_id: str | None = None) -> list[BotMessage]:
        """Answer one customer message.

        The customer's message is stored before anything else, so a failure further on
        loses nothing. A repeated ``message_id``, or the same text within
        :data:`DUPLICATE_SECONDS`, gets the first answer again and is not processed twice.

        Raises:
            ValueError: ``sender`` or ``text`` is empty.
        """
        if not sender or not str(sender).strip():
            raise ValueError("sender is empty: give the conversation's id.")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("The message is empty or only whitespace; send some text.")
        with self._lock(sender):
            return self._turn(sender, text, message_id)

    def _turn(self, sender: str, text: str, message_id: str | None) -> list[BotMessage]:
        now = self.clock()
        state = self.state(sender)
        if message_id and message_id in state.message_ids:
            return [BotMessage.from_dict(m) for m in state.message_ids[message_id]]
        if (
            message_id is None
            and state.last_text == text
            and now - state.last_time <= DUPLICATE_SECONDS
        ):
            return [BotMessage.from_dict(m) for m in state.last_replies]
        self.store.add_event(sender, "user", {"text": text, "message_id": message_id})
        state.turns.append({"speaker": "user", "text": text, "time": now})
        # Saved now, so a failure while understanding keeps the turn in the state too; the
        # duplicate guard is set only once the turn is answered, so a retry is answered.
        self.store.save(state)
        replies = [BotMessage(f"Agent: {m}", custom={"agent": True}) for m in state.outbox]
        state.outbox = []
        replies += self._respond(state, text)
        for message in replies:
            if not (message.custom or {}).get("agent"):
                state.turns.append({"speaker": "bot", "text": message.text, "time": now})
                self.store.add_event(sender, "bot", message.to_dict())
        dumped = [m.to_dict() for m in replies]
        state.last_text, state.last_time, state.last_replies = text, now, dumped
        if message_id:
            state.message_ids[message_id] = dumped
            for old in list(state.message_ids)[:-50]:
                del state.message_ids[old]
        self.store.save(state)
        return replies

    def feedback(self, sender: str, helpful: bool, comment: str = "") -> None:
        """Record whether the last answer helped."""
        self.store.add_event(sender, "feedback", {"helpful": helpful, "comment": comment})

    def agent_reply(self, handoff_id: int, text: str, agent: str = "agent") -> Handoff:
        """An agent's message to the customer of a handoff; delivered on the customer's next
        turn (the REST channel has no push). Takes the handoff if still open.

        Raises:
            KeyError: no such handoff.
            ValueError: empty text.
        """
        if not text or not text.strip():
            raise ValueError("The agent's reply is empty; write some text.")
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None:
            raise KeyError(f"No handoff {handoff_id}.")
        if handoff.status == "open":
            handoff = self.store.update_handoff(handoff_id, status="taken", agent=agent)
        state = self.state(handoff.sender)
        state.outbox.append(text)
        state.turns.append({"speaker": "agent", "text": text, "time": self.clock()})
        self.store.save(state)
        self.store.add_event(handoff.sender, "agent", {"text": text, "agent": agent})
        return handoff

    def take_handoff(self, handoff_id: int, agent: str = "agent") -> Handoff:
        """Mark a handoff taken by ``agent``.

        Raises:
            KeyError: no such handoff.
        """
        if self.store.get_handoff(handoff_id) is None:
            raise KeyError(f"No handoff {handoff_id}.")
        return self.store.update_handoff(handoff_id, status="taken", agent=agent)

    def close_handoff(self, handoff_id: int) -> Handoff:
        """Close a handoff: the bot answers the customer again.

        Raises:
            KeyError: no such handoff.
        """
        handoff = self.store.get_handoff(handoff_id)
        if handoff is None:
            raise KeyError(f"No handoff {handoff_id}.")
        state = self.state(handoff.sender)
        state.handed_off = False
        self.store.save(state)
        return self.store.update_handoff(handoff_id, status="closed")

    # --- deciding -------------------------------------------------------------------------

    def _respond(self, state: ConversationState, text: str) -> list[BotMessage]:
        if state.handed_off:
            return [
                BotMessage(
                    "A colleague has your conversation and will answer here; your message is "
                    "passed on.",
                    custom={"handoff": {"status": "waiting"}},
                )
            ]
        if is_handoff_request(text, self.phrases):
            return self._handoff(state, "the customer asked for a person", None)
        confirmed = text.strip()[1:] if text.strip().startswith("/") else None
        if confirmed and (confirmed in state.offered or confirmed in FLOWS):
            understanding = _understood(confirmed)
            question = state.question or confirmed
        else:
            understanding = self.understand(text)
            question = text
        self.store.add_event(state.sender, "intent", understanding.to_dict())
        info = {"understanding": understanding.to_dict()}
        if understanding.intent in HANDOFF_INTENTS and not understanding.ambiguous:
            return self._handoff(state, "the customer asked for a person", understanding)
        sentiment = understanding.sentiment
        if sentiment is not None and sentiment.negative_strength >= NEGATIVE_HANDOFF:
            return self._handoff(
                state,
                f"strongly negative message (negative strength {sentiment.negative_strength:.2f})",
                understanding,
            )
        # A reply to the slot question: fill it, even when the intent model is unsure.
        if state.asking and state.intent in FLOWS:
            # A confident other intent is a new question, not the slot's free-text answer.
            switch = (
                not understanding.out_of_scope
                and not understanding.ambiguous
                and understanding.confidence >= LOW_CONFIDENCE
                and understanding.intent != state.intent
            )
            asking = None if switch else state.asking
            if self._fill(state, understanding, text, asking=asking):
                state.failures = 0
                return self._next_in_flow(state, info)
        state.offered = []
        if understanding.out_of_scope:
            said = SCOPE if getattr(understanding, "english", True) else NOT_ENGLISH
            return self._failed(state, BotMessage(said, custom=info), understanding)
        if understanding.ambiguous or understanding.confidence < LOW_CONFIDENCE:
            top = [r.intent for r in understanding.ranking[:2]]
            state.offered, state.question = top, question
            buttons = [{"title": readable_intent(i), "payload": f"/{i}"} for i in top]
            message = BotMessage(
                "I'm not sure I understood. Do you mean one of these? If not, please "
                "rephrase your question.",
                buttons,
                info,
            )
            return self._failed(state, message, understanding)
        intent = understanding.intent
        if intent in FLOWS:
            if state.intent != intent or state.asking is None:
                state.intent, state.slots, state.question = intent, {}, question
            self._fill(state, understanding, text, asking=None)
            state.failures = 0
            return self._next_in_flow(state, info)
        state.intent, state.slots, state.asking, state.question = intent, {}, None, question
        return self._answer(state, question, info, understanding)

    def _fill(
        self, state: ConversationState, understanding: Understanding, text: str, asking: str | None
    ) -> bool:
        """Fill the flow's empty slots from the entities (and the asked slot from the text)."""
        filled = False
        for slot in FLOWS[state.intent]:
            if slot.name in state.slots:
                continue
            for entity in understanding.entities:
                if entity.label in slot.labels:
                    value = entity.value if entity.value is not None else entity.text
                    if entity.label == "AMOUNT" and entity.currency:
                        value = f"{value} {entity.currency}"
                    state.slots[slot.name] = value
                    filled = True
                    break
            if slot.name not in state.slots and slot.name == asking and slot.fallback:
                match = re.match(slot.fallback, text.strip())
                if match and not text.strip().startswith("/"):
                    state.slots[slot.name] = match.group(1).strip()
                    filled = True
        return filled

    def _next_in_flow(self, state: ConversationState, info: dict) -> list[BotMessage]:
        for slot in FLOWS[state.intent]:
            if slot.name not in state.slots:
                state.asking = slot.name
                custom = {**info, "flow": state.intent, "slots": dict(state.slots)}
                return [BotMessage(slot.question, custom=custom)]
        state.asking = None
        details = ", ".join(f"{k}: {v}" for k, v in state.slots.items())
        self.store.add_event(
            state.sender, "slots", {"intent": state.intent, "slots": dict(state.slots)}
        )
        messages = [
            BotMessage(
                f"Thanks, I have the details ({details}).",
                custom={**info, "flow": state.intent, "slots": dict(state.slots)},
            )
        ]
        question = state.question or readable_intent(state.intent)
        return messages + self._answer(state, question, info, None)

    def _answer(
        self,
        state: ConversationState,
        question: str,
        info: dict,
        understanding: Understanding | None,
    ) -> list[BotMessage]:
        # The FAQ entries of the understood intent come first (confident, unambiguous, in
        # scope, or confirmed by the customer: the only ways here).
        answer = self.answers.find(question, intent=state.intent)
        if answer is None:
            intent = state.intent and readable_intent(state.intent).lower()
            message = BotMessage(
                f"I understood this is about {intent}, but I have no answer for it. Could you "
                "rephrase, or ask for a person?",
                custom=info,
            )
            return self._failed(state, message, understanding)
        state.failures = 0
        found = answer.to_dict() if hasattr(answer, "to_dict") else dict(vars(answer))
        return [
            BotMessage(
                answer.text,
                custom={
                    **info,
                    "answer": {"source": answer.source, "score": answer.score, **found},
                },
            )
        ]

    def _failed(
        self, state: ConversationState, message: BotMessage, understanding: Understanding | None
    ) -> list[BotMessage]:
        state.failures += 1
        if state.failures >= MAX_FAILURES:
            return self._handoff(
                state, f"{state.failures} turns in a row not understood", understanding
            )
        return [message]

    def _handoff(
        self, state: ConversationState, reason: str, understanding: Understanding | None
    ) -> list[BotMessage]:
        transcript = state.transcript()
        summary, note = None, NO_SUMMARY
        if self.summarizer is not None:
            try:
                summary, note = self.summarizer(transcript), ""
            except Exception as error:  # the handoff must happen; the agent reads the transcript
                note = f"The summary model failed ({type(error).__name__}: {error}); read the transcript."
        handoff = self.store.open_handoff(
            Handoff(state.sender, reason, transcript, summary, note, created=self.clock())
        )
        state.handed_off = True
        state.failures = 0
        state.asking = None
        state.offered = []
        self.store.add_event(state.sender, "handoff", handoff.to_dict())
        custom: dict[str, Any] = {"handoff": handoff.to_dict()}
        if understanding is not None:
            custom["understanding"] = understanding.to_dict()
        return [
            BotMessage(
                "I'm passing you to a colleague who can help; they will answer here shortly.",
                custom=custom,
            )
        ]


#: The shipped intent model the assembled bot reads messages with.
INTENT_MODEL = "data/models/banking77-intent"


def build_support_bot(
    intent_model: str | Path = INTENT_MODEL,
    faq_folder: str | Path = "data/support",
    store: ConversationStore | None = None,
    summary_model: str | Path = SUMMARY_MODEL,
    batching: bool = False,
    faq_encoder: str | Path | None = None,
    **answer_options: Any,
) -> SupportBot:
    """The real bot: ``SupportNLU`` on the shipped intent model, ``AnswerFinder`` on the FAQ
    and policies, the dialogue summarizer when installed.

    ``batching``: concurrent turns (the HTTP API's threads) share the intent, spaCy and FAQ
    embedding calls (:mod:`apps.support.batched`).

    ``faq_encoder``: the encoder of the FAQ index (a ``lepton-support tune-faq`` folder or a
    model name); None: ``LEPTON_FAQ_ENCODER`` when set, else the packaged MiniLM. The policy
    sections and similar cases keep the packaged MiniLM.

    Raises:
        lepton_nlp.errors.ArtifactError: the intent model folder is not an artifact.
    """
    from apps.support.answers import AnswerFinder, faq_encoder_name
    from apps.support.understanding import SupportNLU

    answer_options.setdefault("encoder", faq_encoder_name(faq_encoder))
    if batching:
        from apps.support.batched import BatchedEmbedder, batched_parts

        nlu, answer_options["embedder"] = batched_parts(
            intent_model, answer_options.get("embedder")
        )
    else:
        nlu = SupportNLU.from_artifact(intent_model)
    answers = AnswerFinder.from_folder(faq_folder, **answer_options)
    warn_unknown_faq_intents(answers, getattr(nlu, "labels", None), str(intent_model))
    if batching and answers.faq_embedder is not answers.embedder:
        answers.faq_embedder = BatchedEmbedder(answers.faq_embedder)
    return SupportBot(nlu, answers, store=store, summarizer=load_summarizer(summary_model))


def warn_unknown_faq_intents(answers: Any, labels: list[str] | None, model: str) -> list[str]:
    """Log (and return) the FAQ's intents the intent model does not have: their entries are
    never answered by intent, only by similarity."""
    unknown = sorted(set(getattr(answers, "by_intent", {})) - set(labels)) if labels else []
    if unknown:
        log.warning(
            "%d FAQ intents are not intents of %s (%s): those entries are found by similarity "
            "only. Use the model's intent names in faq.jsonl's `intent` fields.",
            len(unknown),
            model,
            ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""),
        )
    return unknown


def entity_caption(entity: dict[str, Any]) -> str:
    """An entity as the page lists it: ``AMOUNT=1.0 GBP``, ``CARD_LAST4=4821``."""
    value = entity.get("value")
    value = entity.get("text") if value is None else value
    currency = entity.get("currency")
    return f"{entity['label']}={value}" + (f" {currency}" if currency else "")


def answer_caption(answer: dict[str, Any]) -> str:
    """One line on where an answer came from: source, score and how the FAQ entry was chosen."""
    line = f"Answer: {answer['source']} (score {answer['score']:.2f}"
    how = {"intent": "the understood intent's entry", "similarity": "the most similar entry"}
    if answer.get("matched_by") in how:
        line += f"; {how[answer['matched_by']]}"
    return line + ")"


def flow_caption(flow: str | None, slots: dict[str, Any]) -> str:
    """One line on a detail flow's progress: what is known, what is still asked for."""
    names = [slot.name for slot in FLOWS.get(flow or "", ())]
    known = ", ".join(f"{name} {slots[name]}" for name in names if name in slots)
    missing = ", ".join(name for name in names if name not in slots)
    parts = [f"Details for {flow}"]
    if known:
        parts.append(f"known: {known}")
    parts.append(f"still needed: {missing}" if missing else "complete")
    return "; ".join(parts)
