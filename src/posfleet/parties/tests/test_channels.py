"""Payment-channel bindings and their unbind at closure, against the channels' simulator over loopback
(parties.channels.simulator: real HTTP, each channel's own format; no mock of a channel).

What each outcome writes (the binding, its evidence, one exact audit event, the outbox message), that an
unsure answer is resolved by asking the channel and never assumed, that an unbound binding is not sent
again, that concurrent unbinds settle once, and that every refusal changes nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.states import Status
from posfleet.parties.channels import Channel
from posfleet.parties.channels.adapters import adapter_for
from posfleet.parties.channels.simulator import Call
from posfleet.parties.errors import ChannelAlreadyBound
from posfleet.parties.models import ChannelBinding
from posfleet.parties.selectors import channel_bindings_of
from posfleet.parties.services import UnbindOutcome, channel_bind, channel_unbind
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.servers import channel_simulator, free_port

CLOSURE = Actor.job("closure")
CHANNELS = [c.value for c in Channel]
TIMEOUT = 0.5  # the client's; the simulator's late and hung calls wait 1.5 s
KEY = "closure-7-unbind-1"

# What each channel says when it refuses (the simulator's words), in the binding's evidence.
REFUSAL_CODES = {
    "unionpay_card": "12",
    "unionpay_qr": "12",
    "alipay": "ACQ.MERCHANT_HAS_UNSETTLED",
    "wechat_pay": "MCH_PENDING_SETTLEMENT",
    "jd_pay": "E2001",
}
# ... and when it fails: UnionPay and WeChat Pay with an HTTP error, Alipay and JD Pay in their body.
FAILURE_CODES = {
    "unionpay_card": ("http_503", 503),
    "unionpay_qr": ("http_503", 503),
    "alipay": ("isp.unknow-error", 200),
    "wechat_pay": ("http_500", 500),
    "jd_pay": ("9999", 200),
}


@pytest.fixture
def channels(settings):
    with channel_simulator(delay=1.5) as simulator:
        settings.POSFLEET_CHANNELS_URL = simulator.url
        settings.POSFLEET_CHANNELS_TIMEOUT = TIMEOUT
        yield simulator


def bind(world, channel: str = "alipay", sn: str = "CH-0000001") -> ChannelBinding:
    terminal = ChannelBinding.terminal.field.related_model.objects.filter(sn=sn).first()
    terminal = terminal or make_terminal(world, sn, Status.ACTIVE)
    return channel_bind(
        actor=SYSTEM,
        merchant_id=world.merchant_a.pk,
        terminal_id=terminal.pk,
        channel=channel,
        channel_merchant_id=f"{channel.upper()}2088000001",
    )


def fresh(binding: ChannelBinding) -> ChannelBinding:
    return ChannelBinding.objects.get(pk=binding.pk)


def new_audit(since: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=since).order_by("seq"))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def new_outbox(since: int) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.order_by("pk")[since:])


# ---------------------------------------------------------------------------------------------
# Binding


def test_bind_records_the_binding_and_its_audit_event(world):
    make_terminal(world, "CH-0000001", Status.ACTIVE)
    since = last_seq()
    binding = bind(world, "wechat_pay")
    row = fresh(binding)
    assert (
        row.status,
        row.channel,
        row.channel_merchant_id,
        row.attempts,
        row.last_outcome,
        row.evidence,
    ) == (
        "bound",
        "wechat_pay",
        "WECHAT_PAY2088000001",
        0,
        "",
        {},
    )
    assert row.merchant_id == world.merchant_a.pk
    assert row.unbound_at is None
    assert row.bound_at is not None
    (event,) = new_audit(since)
    assert (event.event_type, event.subject_type, event.subject_id, event.actor_kind, event.outcome) == (
        EventType.CHANNEL_BOUND,
        "channel_binding",
        str(binding.pk),
        "system",
        "success",
    )
    assert event.after == {
        "status": "bound",
        "channel": "wechat_pay",
        "channel_merchant_id": "WECHAT_PAY2088000001",
        "merchant": world.merchant_a.mid,
        "terminal": "CH-0000001",
    }


def test_a_terminal_is_bound_to_a_channel_once_at_a_time(world, channels):
    binding = bind(world, "alipay")
    terminal_id = binding.terminal_id
    again = {
        "actor": SYSTEM,
        "merchant_id": world.merchant_a.pk,
        "terminal_id": terminal_id,
        "channel": "alipay",
        "channel_merchant_id": "ALI2088000002",
    }
    with assert_nothing_recorded(ChannelBinding.objects.all()), pytest.raises(ChannelAlreadyBound) as refused:
        channel_bind(**again)
    assert (refused.value.code, refused.value.status, refused.value.params) == (
        "channel_already_bound",
        409,
        {"channel": "alipay"},
    )
    # The database refuses it too, whoever writes (the service's check is not the only guard).
    with pytest.raises(IntegrityError), transaction.atomic():
        ChannelBinding.objects.create(
            merchant=world.merchant_a,
            terminal_id=terminal_id,
            channel="alipay",
            channel_merchant_id="ALI2088000003",
            bound_at=binding.bound_at,
        )
    # Another channel of the same terminal is fine; once unbound, the channel may be bound again.
    channel_bind(**{**again, "channel": "jd_pay"})
    assert channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY).done
    rebound = channel_bind(**again)
    assert list(
        ChannelBinding.objects.filter(terminal_id=terminal_id).values_list("channel", "status").order_by("pk")
    ) == [("alipay", "unbound"), ("jd_pay", "bound"), ("alipay", "bound")]
    assert rebound.channel_merchant_id == "ALI2088000002"


def test_bind_refusals_change_nothing(world, actor_of):
    terminal = make_terminal(world, "CH-0000002", Status.ACTIVE)
    other = make_terminal(world, "CH-0000003", Status.ACTIVE, merchant=world.merchant_b)
    args = {
        "merchant_id": world.merchant_a.pk,
        "terminal_id": terminal.pk,
        "channel": "alipay",
        "channel_merchant_id": "ALI2088000001",
    }
    cases = [
        (SYSTEM, {"channel": "paypal"}, ValidationFailed, "channel"),
        (SYSTEM, {"channel_merchant_id": "has space"}, ValidationFailed, "channel_merchant_id"),
        (SYSTEM, {"channel_merchant_id": ""}, ValidationFailed, "channel_merchant_id"),
        (SYSTEM, {"terminal_id": other.pk}, ValidationFailed, "terminal_id"),
        (SYSTEM, {"merchant_id": 999_999}, NotFound, None),
        (actor_of(world.user("agent_a")), {}, PermissionDenied, None),  # sees the merchant, may not bind
        (actor_of(world.user("agent_b")), {}, NotFound, None),  # does not see it at all
        (actor_of(world.user("merchant_a")), {}, PermissionDenied, None),
    ]
    for actor, changes, error, field in cases:
        with assert_nothing_recorded(ChannelBinding.objects.all()), pytest.raises(error) as refused:
            channel_bind(actor=actor, **{**args, **changes})
        assert refused.value.params.get("field") == field, (changes, refused.value.params)
    channel_bind(actor=actor_of(world.user("admin")), **args)
    assert ChannelBinding.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# Unbinding: each outcome


@pytest.mark.parametrize("channel", CHANNELS)
def test_each_channel_unbinds(world, channels, channel):
    binding = bind(world, channel)
    since, outbox = last_seq(), OutboxMessage.objects.count()

    result = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)

    cmid = binding.channel_merchant_id
    reference = channels.unbound[(channel, cmid)]
    assert channels.calls == [Call(channel, "unbind", cmid, KEY, "answer")]
    assert channels.unbinds_done(channel, cmid) == 1
    assert (result.outcome, result.binding_id, result.channel, result.retry_after) == (
        UnbindOutcome.DONE,
        binding.pk,
        channel,
        None,
    )
    row = fresh(binding)
    assert (row.status, row.last_outcome, row.attempts) == ("unbound", "unbound", 1)
    assert row.unbound_at is not None
    assert row.evidence == result.evidence
    assert {k: v for k, v in row.evidence.items() if k != "at"} == {
        "operation": "unbind",
        "answer": "unbound",
        "code": {"unionpay_card": "00", "unionpay_qr": "00", "alipay": "10000", "jd_pay": "0000"}.get(
            channel, "SUCCESS"
        ),
        "message": {"alipay": "Success", "wechat_pay": ""}.get(channel, "success"),
        "reference": reference,
        "http_status": 200,
        "idempotency_key": KEY,
    }
    (event,) = new_audit(since)
    assert (event.event_type, event.actor_kind, event.actor_label, event.outcome) == (
        EventType.CHANNEL_UNBOUND,
        "job",
        "closure",
        "success",
    )
    assert (event.subject_type, event.subject_id, event.before) == (
        "channel_binding",
        str(binding.pk),
        {"status": "bound"},
    )
    assert event.after == {
        "status": "unbound",
        "channel": channel,
        "merchant": world.merchant_a.mid,
        "terminal": "CH-0000001",
        "answer": "unbound",
        "code": row.evidence["code"],
        "reference": reference,
        "attempts": 1,
    }
    (message,) = new_outbox(outbox)
    assert (message.event_type, message.aggregate_type, message.aggregate_id) == (
        "channel.unbound",
        "channel_binding",
        str(binding.pk),
    )
    assert message.payload == {
        "aggregate_id": str(binding.pk),
        "channel": channel,
        "merchant": world.merchant_a.mid,
        "terminal": "CH-0000001",
        "reference": reference,
    }
    assert verify_chain().ok


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_refusal_is_final_until_a_person_acts(world, channels, channel):
    binding = bind(world, channel)
    since, outbox = last_seq(), OutboxMessage.objects.count()
    channels.control(channel, "refuse", 1)

    result = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)

    assert result.outcome == UnbindOutcome.REFUSED
    assert result.retry_after is None
    assert channels.unbinds_done(channel, binding.channel_merchant_id) == 0
    row = fresh(binding)
    # The channel still holds the binding: it stays bound, with the channel's reason as evidence.
    assert (row.status, row.last_outcome, row.attempts, row.unbound_at) == ("bound", "refused", 1, None)
    assert (row.evidence["operation"], row.evidence["answer"], row.evidence["code"]) == (
        "unbind",
        "refused",
        REFUSAL_CODES[channel],
    )
    assert row.evidence["message"] == "merchant has unsettled transactions"
    (event,) = new_audit(since)
    assert (event.event_type, event.outcome, event.before, event.after["status"], event.after["code"]) == (
        EventType.CHANNEL_UNBIND_REFUSED,
        "refused",
        {"status": "bound"},
        "bound",
        REFUSAL_CODES[channel],
    )
    (message,) = new_outbox(outbox)
    assert (message.event_type, message.payload["code"]) == ("channel.unbind_refused", REFUSAL_CODES[channel])

    # A person settles it with the channel; the step runs again and the unbind goes through.
    again = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key="closure-7-unbind-2")
    assert again.done
    assert (fresh(binding).status, fresh(binding).attempts) == ("unbound", 2)
    assert channels.unbinds_done(channel, binding.channel_merchant_id) == 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_failure_is_retried_later(world, channels, channel):
    binding = bind(world, channel)
    since, outbox = last_seq(), OutboxMessage.objects.count()
    channels.control(channel, "fail", 1)

    result = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)

    assert result.outcome == UnbindOutcome.RETRY
    # The first retry waits 30 s, or what the channel asked for (UnionPay's 503 says Retry-After: 60).
    expected_wait = 60 if channel.startswith("unionpay") else 30
    assert result.retry_after == timedelta(seconds=expected_wait)
    code, http_status = FAILURE_CODES[channel]
    assert (result.evidence["answer"], result.evidence["code"], result.evidence["http_status"]) == (
        "failed",
        code,
        http_status,
    )
    row = fresh(binding)
    assert (row.status, row.last_outcome, row.attempts) == ("unbinding", "failed", 1)
    assert channels.unbinds_done(channel, binding.channel_merchant_id) == 0
    assert [c.op for c in channels.calls] == ["unbind"]  # a failure is no doubt: no status query
    (event,) = new_audit(since)
    assert (event.event_type, event.outcome, event.after["status"], event.after["answer"]) == (
        EventType.CHANNEL_UNBIND_FAILED,
        "failure",
        "unbinding",
        "failed",
    )
    assert OutboxMessage.objects.count() == outbox

    again = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)
    assert again.done
    assert (fresh(binding).status, fresh(binding).attempts) == ("unbound", 2)
    assert new_audit(since)[-1].before == {"status": "unbinding"}


def test_no_connection_is_a_failure(world, settings):
    settings.POSFLEET_CHANNELS_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    binding = bind(world, "jd_pay")
    result = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)
    assert (result.outcome, result.evidence["code"], result.evidence["http_status"]) == (
        UnbindOutcome.RETRY,
        "connection_refused",
        None,
    )
    assert (fresh(binding).status, fresh(binding).last_outcome) == ("unbinding", "failed")


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_timeout_is_resolved_by_asking_and_the_channel_did_not_unbind(world, channels, channel):
    binding = bind(world, channel)
    cmid = binding.channel_merchant_id
    channels.control(channel, "timeout", 1)

    result = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)

    # No answer in time: the channel was asked, says it still holds the binding: send it again later.
    assert channels.calls == [
        Call(channel, "unbind", cmid, KEY, "timeout"),
        Call(channel, "status", cmid, "", "answer"),
    ]
    assert channels.unbinds_done(channel, cmid) == 0
    assert (result.outcome, result.retry_after) == (UnbindOutcome.RETRY, timedelta(seconds=30))
    assert (result.evidence["operation"], result.evidence["answer"]) == ("status", "bound")
    assert (result.evidence["unbind_answer"]["answer"], result.evidence["unbind_answer"]["code"]) == (
        "unknown",
        "timeout",
    )
    row = fresh(binding)
    assert (row.status, row.last_outcome, row.attempts) == ("unbinding", "bound", 1)

    assert channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY).done
    assert channels.unbinds_done(channel, cmid) == 1


def test_when_the_status_query_is_unsure_too_it_is_retried(world, channels):
    binding = bind(world, "alipay")
    channels.control("alipay", "timeout", 1)
    channels.control("alipay", "timeout", 1, op="status")
    since = last_seq()

    result = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)

    assert result.outcome == UnbindOutcome.RETRY
    assert (result.evidence["operation"], result.evidence["answer"], result.evidence["code"]) == (
        "status",
        "unknown",
        "timeout",
    )
    row = fresh(binding)
    assert (row.status, row.last_outcome) == ("unbinding", "unknown")  # never assumed either way
    assert [e.event_type for e in new_audit(since)] == [EventType.CHANNEL_UNBIND_FAILED]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_late_answer_is_resolved_to_done_by_the_status_query(world, channels, channel):
    binding = bind(world, channel)
    cmid = binding.channel_merchant_id
    channels.control(channel, "late", 1)
    since = last_seq()

    result = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)

    assert channels.calls == [
        Call(channel, "unbind", cmid, KEY, "late"),
        Call(channel, "status", cmid, "", "answer"),
    ]
    assert channels.unbinds_done(channel, cmid) == 1  # exactly one unbind took effect
    assert result.outcome == UnbindOutcome.DONE
    assert (result.evidence["operation"], result.evidence["answer"], result.evidence["reference"]) == (
        "status",
        "unbound",
        channels.unbound[(channel, cmid)],
    )
    assert result.evidence["unbind_answer"]["answer"] == "unknown"
    row = fresh(binding)
    assert (row.status, row.last_outcome, row.attempts) == ("unbound", "unbound", 1)
    assert [e.event_type for e in new_audit(since)] == [EventType.CHANNEL_UNBOUND]


def test_an_unbound_binding_is_not_sent_again(world, channels):
    binding = bind(world, "unionpay_qr")
    first = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)
    calls = list(channels.calls)
    with assert_nothing_recorded(fresh(binding)):
        again = channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key="another-key")
    assert (again.outcome, again.evidence) == (UnbindOutcome.DONE, first.evidence)
    assert channels.calls == calls


def test_the_channel_acts_once_per_key_and_says_already_unbound_to_another(world, channels):
    """What makes a retry after an unsure answer safe, adapter by adapter (no database involved)."""
    for channel in CHANNELS:
        adapter = adapter_for(channel)
        binding = ChannelBinding(channel=channel, channel_merchant_id=f"{channel}-X1")
        first = adapter.unbind(binding, "k-1")
        replay = adapter.unbind(binding, "k-1")
        other = adapter.unbind(binding, "k-2")
        assert [a.outcome for a in (first, replay, other)] == ["unbound"] * 3, channel
        assert first.reference == replay.reference != ""
        assert adapter.status(binding).outcome == "unbound"
        assert channels.unbinds_done(channel, binding.channel_merchant_id) == 1


def test_unbind_refusals_change_nothing_and_call_no_channel(world, channels, actor_of):
    binding = bind(world, "alipay")
    cases = [
        (CLOSURE, binding.pk, "", ValidationFailed),
        (CLOSURE, binding.pk, "has space", ValidationFailed),
        (CLOSURE, binding.pk, "x" * 65, ValidationFailed),
        (CLOSURE, binding.pk, "key\n", ValidationFailed),
        (CLOSURE, 999_999, KEY, NotFound),
        (actor_of(world.user("agent_a")), binding.pk, KEY, PermissionDenied),
        (actor_of(world.user("merchant_a")), binding.pk, KEY, PermissionDenied),
        (actor_of(world.user("agent_b")), binding.pk, KEY, NotFound),
        (actor_of(world.user("merchant_b")), binding.pk, KEY, NotFound),
    ]
    for actor, binding_id, key, error in cases:
        with assert_nothing_recorded(fresh(binding)), pytest.raises(error):
            channel_unbind(actor=actor, binding_id=binding_id, idempotency_key=key)
    assert channels.calls == []
    assert channel_unbind(
        actor=actor_of(world.user("admin")), binding_id=binding.pk, idempotency_key=KEY
    ).done


def test_unbind_refuses_to_run_inside_a_transaction(world, channels):
    """It talks to the channel between transactions of its own; inside the caller's it would hold locks
    while waiting on the network and could not commit the attempt first."""
    binding = bind(world, "alipay")
    with pytest.raises(RuntimeError), transaction.atomic():
        channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY)
    assert channels.calls == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("callers", [2, 4])
def test_concurrent_unbinds_settle_once(channels, callers):
    from posfleet.testing.personas import build_world

    world = build_world()
    binding = bind(world, "wechat_pay")
    cmid = binding.channel_merchant_id
    # Each call waits 0.2 s at the channel (within the client's timeout), so the callers overlap there.
    channels.control("wechat_pay", "late", callers, delay=0.2)
    since, outbox = last_seq(), OutboxMessage.objects.count()
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(callers)

    def attempt() -> None:
        try:
            barrier.wait()
            outcome = str(channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY).outcome)
        except DomainError as exc:
            outcome = exc.code
        except Exception as exc:  # a deadlock or a database error fails the guarantee
            outcome = f"error:{type(exc).__name__}:{exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == ["done"] * callers
    assert len(channels.calls_of("wechat_pay", "unbind")) == callers  # all reached the channel, same key
    assert channels.unbinds_done("wechat_pay", cmid) == 1
    row = fresh(binding)
    assert (row.status, row.attempts) == ("unbound", callers)
    assert [e.event_type for e in new_audit(since)] == [EventType.CHANNEL_UNBOUND]
    assert [m.event_type for m in new_outbox(outbox)] == ["channel.unbound"]
    assert verify_chain().ok


# ---------------------------------------------------------------------------------------------
# Reading, the simulator's own control, the admin


def test_channel_bindings_of_terminals(world, channels):
    alipay = bind(world, "alipay", sn="CH-0000011")
    jd = channel_bind(
        actor=SYSTEM,
        merchant_id=world.merchant_a.pk,
        terminal_id=alipay.terminal_id,
        channel="jd_pay",
        channel_merchant_id="JD110",
    )
    other = bind(world, "alipay", sn="CH-0000012")
    assert channel_unbind(actor=CLOSURE, binding_id=jd.pk, idempotency_key=KEY).done
    assert [b.pk for b in channel_bindings_of([alipay.terminal_id])] == [alipay.pk, jd.pk]
    assert [b.pk for b in channel_bindings_of([alipay.terminal_id], open_only=True)] == [alipay.pk]
    assert [b.pk for b in channel_bindings_of({alipay.terminal_id, other.terminal_id}, open_only=True)] == [
        alipay.pk,
        other.pk,
    ]
    assert list(channel_bindings_of([])) == []


def test_the_simulator_is_told_over_http(world, channels):
    import requests

    answer = requests.post(
        f"{channels.url}/_control", json={"channel": "jd_pay", "mode": "refuse"}, timeout=5
    )
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    bad = requests.post(f"{channels.url}/_control", json={"channel": "jd_pay", "mode": "shrug"}, timeout=5)
    assert bad.status_code == 400
    binding = bind(world, "jd_pay")
    assert channel_unbind(actor=CLOSURE, binding_id=binding.pk, idempotency_key=KEY).outcome == "refused"
    state = requests.get(f"{channels.url}/_state", timeout=5).json()
    assert [(c["channel"], c["op"], c["mode"]) for c in state["calls"]] == [("jd_pay", "unbind", "refuse")]
    assert state["unbound"] == []


def test_channel_bindings_are_read_only_in_the_admin(client, world, channels):
    from posfleet.testing.sessions import sign_in

    binding = bind(world, "alipay")
    user = world.user("admin")
    user.is_staff = user.is_superuser = True
    user.save()
    sign_in(client, user, stepped_up=True)
    assert client.get("/admin/parties/channelbinding/").status_code == 200
    page = client.get(f"/admin/parties/channelbinding/{binding.pk}/change/")
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    with assert_nothing_recorded(fresh(binding)):
        client.post(f"/admin/parties/channelbinding/{binding.pk}/change/", {"status": "unbound"})
    assert client.get("/admin/parties/channelbinding/add/").status_code == 403
