"""Support page: chat with the bot (text or voice), see what it understood, the handoffs (with
similar resolved cases), the traffic."""

from __future__ import annotations

import importlib
import os
import uuid
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from apps.common.database import StoreError, database_url
from apps.support.analytics import hourly_traffic, intent_table, traffic_summary
from apps.support.dialogue import SupportBot, answer_caption, entity_caption, flow_caption
from lepton_nlp.security import escape_markdown

__all__ = ["BOT_FACTORY_ENV", "render"]

#: ``module:function`` building the bot from a store (tests and demos inject stand-ins).
BOT_FACTORY_ENV = "LEPTON_SUPPORT_BOT_FACTORY"
HISTORY = "support_history"
SENDER = "support_sender"


@st.cache_resource(show_spinner="Loading the support bot's models (once per process)...")
def _bot(url: str, factory: str) -> SupportBot:
    from apps.support.store import SupportStore

    store = SupportStore(url)
    if factory:
        module, _, name = factory.partition(":")
        return getattr(importlib.import_module(module), name)(store)
    from apps.support.dialogue import build_support_bot

    return build_support_bot(store=store)


def get_bot() -> SupportBot:
    """The bot of this process; a missing model, module or database stops the page with why."""
    try:
        return _bot(database_url(), os.environ.get(BOT_FACTORY_ENV, ""))
    except (StoreError, RuntimeError, OSError) as error:
        st.error(str(error))
        st.stop()


def _understanding_panel(custom: dict[str, Any]) -> None:
    understood = custom.get("understanding")
    if understood:
        scope = "out of scope" if understood["out_of_scope"] else "in scope"
        unsure = ", ambiguous" if understood["ambiguous"] else ""
        st.markdown(
            f"**{understood['intent'] or '-'}** · {understood['confidence']:.2f} · {scope}{unsure}"
        )
        if understood["entities"]:
            st.caption("Entities: " + ", ".join(map(entity_caption, understood["entities"])))
        sentiment = understood.get("sentiment")
        if sentiment:
            st.caption(
                f"Sentiment: {sentiment['label']} (negative {sentiment['negative_strength']:.2f})"
            )
    if "answer" in custom:
        st.caption(answer_caption(custom["answer"]))
    if "slots" in custom:
        st.caption(flow_caption(custom.get("flow"), custom["slots"]))
    if custom.get("handoff", {}).get("reason"):
        st.caption(f"Handoff: {custom['handoff']['reason']}")
    if "transcript" in custom:
        st.caption(f"Heard: {escape_markdown(custom['transcript'])}")


def _send(
    bot: SupportBot, text: str, transcript: str | None = None, shown: str | None = None
) -> None:
    """Send ``text`` to the bot; the chat shows ``shown`` (a pressed button's title) instead."""
    sender = st.session_state[SENDER]
    history = st.session_state[HISTORY]
    history.append({"role": "user", "text": shown or text, "custom": {}})
    try:
        messages = bot.reply(sender, text)
    except ValueError as error:
        st.warning(str(error))
        return
    for i, message in enumerate(messages):
        custom = dict(message.custom or {})
        if transcript and i == 0:
            custom["transcript"] = transcript
        history.append(
            {
                "role": "assistant",
                "text": message.text,
                "custom": custom,
                "buttons": message.buttons,
            }
        )


def _transcribe(audio: Any) -> str | None:
    from apps.support.api import MAX_AUDIO_SECONDS
    from lepton_nlp.speech import SpeechError, transcribe

    try:
        with st.spinner("Transcribing..."):
            # The API's limit: a voice message is a question, not a recording to transcribe.
            text = transcribe(audio.getvalue(), max_seconds=MAX_AUDIO_SECONDS).text
    except SpeechError as error:
        st.warning(f"The audio could not be transcribed: {error}")
        return None
    if not text.strip():
        st.warning("No speech was heard in the audio; record again or type.")
        return None
    return text


def _chat(bot: SupportBot) -> None:
    history = st.session_state[HISTORY]
    pending = None
    for n, turn in enumerate(history):
        with st.chat_message(turn["role"]):
            left, right = st.columns([3, 2])
            # A customer's words are shown as written, never as links, images or markup.
            left.markdown(escape_markdown(turn["text"]) if turn["role"] == "user" else turn["text"])
            with right:
                _understanding_panel(turn["custom"])
            if n == len(history) - 1:
                for i, button in enumerate(turn.get("buttons") or []):
                    if st.button(button["title"], key=f"support_btn_{n}_{i}"):
                        pending = button
    with st.expander("Speak instead"):
        recorded = st.audio_input("Record a message", key="support_audio")
        uploaded = st.file_uploader(
            "or upload a voice message",
            type=["wav", "mp3", "ogg", "webm", "m4a", "flac"],
            key="support_upload",
        )
        clip = recorded or uploaded
        if clip is not None and st.button("Send the audio", key="support_send_audio"):
            text = _transcribe(clip)
            if text:
                _send(bot, text, transcript=text)
                st.rerun()
    typed = st.chat_input("Ask about your card, payments, transfers...", key="support_input")
    if pending:
        _send(bot, pending["payload"], shown=pending["title"])
        st.rerun()
    if typed:
        _send(bot, typed)
        st.rerun()
    if st.button("New conversation", key="support_new"):
        st.session_state[SENDER] = f"web-{uuid.uuid4().hex[:8]}"
        st.session_state[HISTORY] = []
        st.rerun()


def _similar_cases(near: list[Any] | None) -> None:
    st.markdown("**Similar resolved cases**")
    if near is None:
        st.caption("No embedder is loaded with the FAQ, so past cases cannot be compared.")
    elif not near:
        st.caption(
            "None yet: closed handoffs that an agent answered show here, most similar first."
        )
    for case in near or []:
        said = case.customer.replace("\n", " / ")
        st.caption(f"#{case.handoff_id} · {case.sender} · similarity {case.score:.2f} · {said}")
        st.markdown(f"Resolved with: {case.resolution}")


def _handoffs(bot: SupportBot) -> None:
    from apps.support.similar import similar_for

    handoffs = bot.store.handoffs(None)
    if not handoffs:
        st.info("No conversation has been handed to a person yet.")
        return
    # Closed ones need no help: only the open and taken handoffs are compared.
    active = [h for h in handoffs if h.status != "closed"]
    near = similar_for(bot, active, 3)
    found = {h.id: None if near is None else near[n] for n, h in enumerate(active)}
    for handoff in reversed(handoffs):
        with st.container(border=True):
            # Sender ids and summaries come from customers (through the API): text, not markup.
            st.markdown(
                f"**#{handoff.id} · {escape_markdown(handoff.sender)}** · {handoff.status}"
                + (f" ({escape_markdown(handoff.agent)})" if handoff.agent else "")
            )
            st.caption(f"Why: {handoff.reason}")
            if handoff.summary:
                st.markdown(f"Summary: {escape_markdown(handoff.summary)}")
            else:
                st.caption(handoff.note)
            with st.expander("Transcript"):
                st.text(handoff.transcript)
            if handoff.id in found:
                _similar_cases(found[handoff.id])
            if handoff.status != "closed":
                reply = st.text_input("Reply as agent", key=f"support_reply_{handoff.id}")
                c1, c2 = st.columns(2)
                if c1.button("Send reply", key=f"support_send_{handoff.id}") and reply.strip():
                    bot.agent_reply(handoff.id, reply, agent="agent")
                    st.rerun()
                if c2.button("Close", key=f"support_close_{handoff.id}"):
                    bot.close_handoff(handoff.id)
                    st.rerun()


def _analytics(bot: SupportBot) -> None:
    events = bot.store.events_of() if hasattr(bot.store, "events_of") else []
    summary = traffic_summary(events)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Conversations", summary["conversations"])
    rate = summary["containment_rate"]
    c2.metric("Containment", "-" if rate is None else f"{rate:.0%}")
    c3.metric("Handoffs", summary["handoffs"])
    c4.metric("Low-confidence turns", summary["low_confidence_turns"])
    table = intent_table(events)
    if table.empty:
        st.info("No traffic yet: chat with the bot, or send messages to its API.")
        return
    table["hour"] = pd.to_datetime(table["time"]).dt.floor("h")
    st.subheader("Intents over time")
    st.altair_chart(
        alt.Chart(table)
        .mark_bar()
        .encode(
            x="hour:T",
            y=alt.Y("count():Q", title="messages"),
            color="intent:N",
            tooltip=["intent", alt.Tooltip("count():Q", title="messages")],
        ),
        use_container_width=True,
    )
    hourly = hourly_traffic(events)
    st.subheader("Containment and handoffs")
    base = alt.Chart(hourly).encode(x=alt.X("hour:T", title="hour"))
    st.altair_chart(
        alt.layer(
            base.mark_bar(opacity=0.4).encode(y=alt.Y("handoffs:Q", title="handoffs")),
            base.mark_line(point=True, color="green").encode(
                y=alt.Y(
                    "containment_rate:Q",
                    title="containment (conversations never handed over)",
                    axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1]),
                )
            ),
        ).resolve_scale(y="independent"),
        use_container_width=True,
    )
    st.subheader("Low-confidence turns")
    low = table.groupby("hour", as_index=False)["low_confidence"].mean()
    st.altair_chart(
        alt.Chart(low)
        .mark_line(point=True)
        .encode(
            x="hour:T",
            y=alt.Y("low_confidence:Q", title="share of turns", axis=alt.Axis(format="%")),
        ),
        use_container_width=True,
    )
    st.subheader("Top intents")
    st.bar_chart(table["intent"].value_counts().head(10))


def render() -> None:
    st.title("Support")
    st.session_state.setdefault(SENDER, f"web-{uuid.uuid4().hex[:8]}")
    st.session_state.setdefault(HISTORY, [])
    bot = get_bot()
    chat, handoffs, analytics = st.tabs(["Chat", "Handoffs", "Analytics"])
    with chat:
        st.caption(f"Conversation `{st.session_state[SENDER]}`")
        _chat(bot)
    with handoffs:
        _handoffs(bot)
    with analytics:
        _analytics(bot)
