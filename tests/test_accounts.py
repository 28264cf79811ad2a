"""Accounts: hashed passwords (plain text still read, with a warning), roles, `liverclick accounts set`, failed
sign-ins slowed per account and per client address, and logged; and, for servers sharing a feedback store, the
sign-ins and failed sign-ins kept in it (on SQLite and PostgreSQL)."""

import asyncio
import io
import logging
import math
import threading
import time

import httpx
import pytest

from core.cli import main as cli_main
from core.runtime import Segmenter
from webapp.accounts import Account, AccountError, Accounts, check_password, hash_password, parse_account
from webapp.feedback.store import FeedbackStore
from webapp.shared import RECHECK_S, SESSION_LIFETIME_S, StoreTokens, cookie_id
from webapp.signin import FREE_FAILURES, SIGN_IN_DOWN, Failures, SignInThrottle, StoreLedger


def test_a_hashed_password_checks_and_a_plain_one_is_still_read():
    secret = hash_password("correct horse")
    assert secret.startswith("scrypt$16384$8$1$") and ":" not in secret and "correct" not in secret
    assert check_password("correct horse", secret) and not check_password("correct hors", secret)
    assert check_password("pw", "pw") and not check_password("pw", "pw2") and not check_password("x", "scrypt$bad")
    assert hash_password("same") != hash_password("same")  # salted


def test_account_lines_and_roles(tmp_path):
    assert parse_account("ann:secret:with:colons") == Account("ann", "secret:with:colons", "reviewer")
    assert parse_account("ann:pw:organiser") == Account("ann", "pw", "organiser")
    for bad in ("nopassword", ":pw", "user:", "user::organiser"):
        with pytest.raises(AccountError, match="USER:PASSWORD or USER:HASH"):
            parse_account(bad)
    file = tmp_path / "logins.txt"
    file.write_text(f"# reviewers\nann:{hash_password('pw-ann')}:organiser\n\nbob:password\n")
    accounts = Accounts.read(["eve:xylophone"], file)
    assert len(accounts) == 3 and accounts.plain == ["eve", "bob"]
    assert accounts.is_organiser("ann") and accounts.role("bob") == "reviewer" and accounts.role("zed") is None
    assert accounts.verify("ann", "pw-ann") and not accounts.verify("ann", "pw") and not accounts.verify("zed", "pw")
    assert asyncio.run(accounts.check("bob", "password"))
    with pytest.raises(AccountError, match="given twice"):
        Accounts.read(["bob:another password"], file)
    assert not Accounts.read([], None) and Accounts.of(None) is None


def test_accounts_set_writes_a_hashed_line_and_keeps_the_others(tmp_path, monkeypatch, capsys):
    file = tmp_path / "reviewers.txt"
    file.write_text("# the study's readers\nbob:old-plain\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert cli_main(["accounts", "set", "ann", "--file", str(file), "--role", "organiser"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("bob's new password\n"))
    assert cli_main(["accounts", "set", "bob", "--file", str(file)]) == 0
    lines = file.read_text().splitlines()
    assert lines[0] == "# the study's readers" and len(lines) == 3 and "old-plain" not in file.read_text()
    accounts = Accounts.read([], file)
    assert accounts.plain == [] and accounts.is_organiser("ann") and accounts.verify("bob", "bob's new password")
    assert file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["accounts", "set", "carl", "--file", str(file)]) == 2
    assert "at least 8 characters" in capsys.readouterr().err


def test_a_plain_password_is_held_to_the_rule_of_accounts_set(tmp_path, monkeypatch, capsys, tiny_model):
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert cli_main(["accounts", "set", "ann", "--file", str(tmp_path / "logins.txt")]) == 2
    refused = capsys.readouterr().err.strip().splitlines()[-1]
    rule = refused.split(": ", 2)[-1]  # after "liverclick accounts set: error: " (or the like)
    assert rule == "a password needs at least 8 characters"
    monkeypatch.setattr("webapp.app.launch", lambda *a, **kw: None)  # nothing is served, either way
    assert cli_main(["serve", "--model", str(tiny_model), "--auth", "ann:pw"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"the login 'ann': {rule}")
    (tmp_path / "plain.txt").write_text("bob:1234567\n")
    with pytest.raises(AccountError, match=f"the login 'bob': {rule}"):
        Accounts.read([], tmp_path / "plain.txt")
    assert Accounts.read(["ann:12345678"]).verify("ann", "12345678")  # eight characters are enough


def test_failures_owe_a_growing_wait_and_fewer_attempts_at_once_per_key():
    now = [0.0]
    failures = Failures(clock=lambda: now[0])
    keys = ("account:ann", "address:10.0.0.1")
    assert all(failures.admit(*keys) == 0 for _ in range(FREE_FAILURES))  # people signing in together
    assert failures.admit(*keys) > 0  # a sixth at the same time waits for one of them
    for _ in range(FREE_FAILURES):
        failures.done(keys, success=False)
    assert failures.admit(*keys) == 1.0  # after five failures the next one waits a second
    now[0] += 1.0
    assert failures.admit(*keys) == 0 and failures.admit(*keys) > 0  # then one at a time
    failures.done(keys, success=False)
    assert failures.admit(*keys) == 2.0 and failures.admit("account:ann", "address:10.0.0.2") == 2.0
    assert failures.admit("account:bob", "address:10.0.0.1") == 2.0  # the address owes it too
    now[0] += 2.5
    assert failures.admit("account:ann", "address:10.0.0.3") == 0
    failures.done(("account:ann", "address:10.0.0.3"), success=True)  # the right password
    assert failures.count("account:ann") == 0 and failures.admit("account:ann", "address:10.0.0.4") == 0
    now[0] += 16 * 60  # failures older than the window are forgotten
    assert failures.admit("account:zed", "address:10.0.0.1") == 0


@pytest.mark.slow
def test_wrong_passwords_are_slowed_and_logged_and_the_right_one_still_gets_in(tiny_model, start_viewer, caplog):
    url = start_viewer(Segmenter(tiny_model, provider="cpu"), auth=[("rev", "right-pw"), ("rev2", "other-pw")])
    codes = []
    with caplog.at_level(logging.INFO, logger="liverclick.audit"), httpx.Client(base_url=url, timeout=30) as web:
        start = time.perf_counter()
        for i in range(300):
            codes.append(web.post("login", data={"username": "rev", "password": f"guess{i}"}).status_code)
        took = time.perf_counter() - start
        at_once = []
        threads = [threading.Thread(target=lambda: at_once.append(_guess(url))) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes[-1] == 429  # so the wait is on, for a second at least
        right = web.post("login", files={"username": (None, "rev"), "password": (None, "right-pw")})
        assert right.status_code == 429 and "try again in" in right.json()["detail"]  # even the right one waits
        other = httpx.post(f"{url}login", data={"username": "rev2", "password": "other-pw"}, headers=_from("10.1.2.3"))
        assert other.status_code == 200  # another account from another address is not held up
    checked = codes.count(400)
    print(f"\n300 wrong passwords in {took:.2f} s: {checked} checked, {codes.count(429)} refused at once (429)")
    # 5 free failures, then waits of 1, 2, 4, ... s: in `took` seconds, a few more at most.
    assert (
        FREE_FAILURES <= checked <= FREE_FAILURES + math.ceil(math.log2(took + 1)) and codes.count(429) == 300 - checked
    )
    assert at_once.count(429) >= 19  # guesses sent in parallel gain nothing
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count("failed sign-in: account 'rev' from 127.0.0.1 (5 in 15 min)") == 1
    assert any(line.startswith("sign-in refused, too many failures: account 'rev'") for line in lines)
    assert "signed in: account 'rev2' from 10.1.2.3" in lines
    assert all("guess" not in line and "right-pw" not in line for line in lines)  # no password is ever logged


def _guess(url: str) -> int:
    return httpx.post(f"{url}login", data={"username": "rev", "password": "in parallel"}, timeout=30).status_code


def _from(address: str) -> dict:
    """A request as a proxy on loopback forwards it (uvicorn trusts X-Forwarded-For from 127.0.0.1)."""
    return {"X-Forwarded-For": address}


def test_servers_sharing_a_store_share_sign_ins(db_url):
    now = [1_000_000.0]
    with FeedbackStore.open(db_url) as one, FeedbackStore.open(db_url) as other:  # two servers
        here, there = StoreTokens(one, clock=lambda: now[0]), StoreTokens(other, clock=lambda: now[0])
        here["token-of-ann"] = "ann"
        assert there.get("token-of-ann") == "ann" and there.get("token-of-eve") is None and there.get(None) is None
        rows = one.read(lambda run: run("SELECT * FROM sign_in_session").fetchall())
        assert len(rows) == 1 and "token-of-ann" not in repr(rows)  # a hash of the token, never the token
        assert cookie_id(one) == cookie_id(other)  # the same cookie name, so the browser's cookie is read everywhere
        del here["token-of-ann"]  # signed out on one server
        assert there["token-of-ann"] == "ann"  # the other has it in memory for a while
        now[0] += RECHECK_S + 1
        assert there.get("token-of-ann") is None and "token-of-ann" not in there
        here["token-of-bob"] = "bob"
        now[0] += SESSION_LIFETIME_S + 1
        assert there.get("token-of-bob") is None and here.get("token-of-bob") is None  # a sign-in ends


def test_servers_sharing_a_store_count_failed_sign_ins_together(db_url):
    now = [1_000_000.0]
    keys = ("account:ann", "address:10.0.0.1")
    with FeedbackStore.open(db_url) as one, FeedbackStore.open(db_url) as other:
        here = Failures(clock=lambda: now[0], ledger=StoreLedger(one))
        there = Failures(clock=lambda: now[0], ledger=StoreLedger(other))
        for _ in range(FREE_FAILURES):
            assert here.admit(*keys) == 0
            here.done(keys, success=False)
        assert there.admit(*keys) == 1.0 and there.count("account:ann") == FREE_FAILURES  # five, on the other server
        now[0] += 1.0
        assert there.admit(*keys) == 0
        there.done(keys, success=True)  # the right password there clears the account here
        assert here.count("account:ann") == 0 and here.count("address:10.0.0.1") == FREE_FAILURES
        now[0] += 16 * 60
        assert here.count("address:10.0.0.1") == 0


def test_a_store_out_of_reach_signs_out_nobody_known_and_refuses_new_sign_ins(tmp_path):
    from starlette.testclient import TestClient

    now = [1_000_000.0]
    store = FeedbackStore.open(tmp_path / "feedback.db")
    tokens = StoreTokens(store, clock=lambda: now[0])
    tokens["token-of-ann"] = "ann"
    store.close()  # the database goes away
    now[0] += RECHECK_S + 1
    assert tokens.get("token-of-ann") == "ann" and tokens.get("token-of-eve") is None

    async def gradio(scope, receive, send):
        raise AssertionError("a sign-in that cannot be counted must not be heard")

    answer = TestClient(SignInThrottle(gradio, store=store)).post("/login", data={"username": "ann", "password": "x"})
    assert answer.status_code == 503 and answer.json()["detail"] == SIGN_IN_DOWN
