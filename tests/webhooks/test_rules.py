"""The pure parts of webhooks: the backoff, the targets allowed, and signatures that the
Standard Webhooks library verifies."""

import random
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from service.webhooks.retry import gives_up, retry_delay
from service.webhooks.signing import message_id, new_salt, secret_for, signature
from service.webhooks.targets import TargetRefused, check_address, parse_target


def test_retries_start_at_about_a_second_double_and_stop_at_the_maximum() -> None:
    rand = random.Random(7)
    first = [retry_delay(1, max_seconds=300, rand=rand).total_seconds() for _ in range(200)]
    assert 0.75 <= min(first) < 0.85
    assert 1.15 < max(first) <= 1.25
    assert len({round(delay, 3) for delay in first}) > 100  # jittered, not one value
    for failures, base in [(2, 2), (3, 4), (5, 16), (8, 128)]:
        delay = retry_delay(failures, max_seconds=300, rand=rand).total_seconds()
        assert base * 0.75 <= delay <= base * 1.25, failures
    assert retry_delay(9, max_seconds=300, rand=rand) <= timedelta(seconds=300)
    assert retry_delay(10_000, max_seconds=300, rand=rand) <= timedelta(seconds=300)
    assert retry_delay(10_000, max_seconds=5, rand=rand) >= timedelta(seconds=3.75)


def test_a_subscription_is_given_up_on_after_the_span() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    span = timedelta(hours=24)
    assert not gives_up(since, since + span - timedelta(seconds=1), after=span)
    assert gives_up(since, since + span, after=span)


@pytest.mark.parametrize(
    "url",
    [
        "http://receiver.example/hook",  # not https
        "ftp://receiver.example/",
        "https:///nohost",
        "https://user:pass@receiver.example/",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://100.64.0.1/",  # shared address space
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://receiver.example:0/",
        "https://receiver.example:99999/",
        "https://[::1/",
        # IPv4 addresses inside IPv6 ones: NAT64, 6to4, SIIT, the old compatible form.
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[64:ff9b:1::a00:1]/",
        "https://[2002:a9fe:a9fe::1]/",
        "https://[::127.0.0.1]/",
        "https://[::ffff:0:7f00:1]/",
        "https://a..example/",  # not a valid host name (IDNA)
        "https://" + "a" * 64 + ".example/",
    ],
)
def test_only_https_to_public_addresses_by_default(url: str) -> None:
    with pytest.raises(TargetRefused):
        parse_target(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://receiver.example/hook",
        "https://8.8.8.8/",
        "https://[2001:4860::8888]/",
        "https://[64:ff9b::808:808]/",  # NAT64 to a public address
        "https://bücher.example/",
    ],
)
def test_public_https_targets_are_taken(url: str) -> None:
    assert parse_target(url, allow_private=False).scheme == "https"


def test_the_setting_allows_http_and_private_addresses() -> None:
    assert parse_target("http://127.0.0.1:8080/hook", allow_private=True).port == 8080
    check_address(ip_address("10.0.0.1"), allow_private=True)
    with pytest.raises(TargetRefused, match="ROADMAP_WEBHOOK_ALLOW_PRIVATE"):
        check_address(ip_address("10.0.0.1"), allow_private=False)


def test_signatures_verify_with_the_specifications_library() -> None:
    secret = secret_for("server key", new_salt())
    assert secret.startswith("whsec_")
    sent_at = datetime.now(UTC)
    body = '{"id": 7, "kind": "status_changed"}'
    headers = {
        "webhook-id": message_id(7),
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature(secret, message_id(7), sent_at, body),
    }
    assert Webhook(secret).verify(body, headers) == {"id": 7, "kind": "status_changed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("7", "8"), headers)
    other = secret_for("another server key", "salt")
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_a_secret_depends_on_the_key_and_the_salt() -> None:
    assert secret_for("key", "salt") == secret_for("key", "salt")
    assert secret_for("key", "salt") != secret_for("key", "other salt")
    assert secret_for("key", "salt") != secret_for("other key", "salt")
    assert new_salt() != new_salt()
