"""The test harness itself: a real moto server answers over HTTP and reset empties it."""


def test_moto_server_answers_and_resets(client, aws) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    kms.create_key(Description="smoke")
    assert len(kms.list_keys()["Keys"]) == 1
    aws.reset()
    assert kms.list_keys()["Keys"] == []
