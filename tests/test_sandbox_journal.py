from dreams_sms.sandbox.state import Sandbox


def test_record_survives_a_restart_with_a_journal(tmp_path):
    path = tmp_path / "journal.jsonl"
    first = Sandbox(journal=path)
    params = {"user": "demo", "secret_key": "demo-secret", "sender": "Dreams",
              "to": "966551234567", "message": "hello"}
    first.api("sendsms", params)
    first.api("sendsms", {**params, "to": "966551234568"})
    again = Sandbox(journal=path)
    assert again.stats()["accepted"] == 2
    assert again.lookup("Dreams", 0, [{"to": "966551234567", "text": "hello"}]) == [1]
    again.api("sendsms", params)
    assert again.stats()["duplicates"] == 1
    assert [m["id"] for m in again.messages(limit=10)["messages"]] == [1, 2, 3]
    again.reset()
    assert Sandbox(journal=path).stats()["accepted"] == 0
