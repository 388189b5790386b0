def test_handoff_on_a_handoff_intent():
    from apps.support.understanding import IntentScore, Understanding

    def nlu(text):
        return Understanding(
            text, "human_handoff", 0.9, [IntentScore("human_handoff", 0.9)], False, False
        )

    bot = SupportBot(nlu, StandInAnswers(), handoff_phrases=[], clock=Clock())
    [message] = bot.reply("u1", "hand me over pls")
    assert message.custom["handoff"]["reason"] == "the customer asked for a person"


def test_concurrent_turns_of_one_sender_are_serialised():
    import threading

    bot = make_bot(clock=Clock())
    threads = [
        threading.Thread(target=bot.reply, args=("u1", f"activate card {i}")) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([t for t in bot.state("u1").turns if t["speaker"] == "user"]) == 8
