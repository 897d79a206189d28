"""A short demo sync: two clients of one store race, one is refused, rebases, and both converge."""

from __future__ import annotations

import secrets
import sys
from typing import Any, TextIO

from stratasync.client.transport import SyncHttpTransport
from stratasync.protocol.errors import ServerAheadError


def _event(seq: int, parent: int, client_id: str, text: str) -> dict[str, Any]:
    return {
        "name": "v1.TodoCreated",
        "args": {"id": f"{client_id}-{seq}", "text": text},
        "seqNum": seq,
        "parentSeqNum": parent,
        "clientId": client_id,
        "sessionId": "demo",
    }


def _log(transport: SyncHttpTransport) -> list[tuple[int, str, str]]:
    events = [event for page in transport.pull(None) for event in page.events]
    return [(event["seqNum"], event["clientId"], event["args"]["text"]) for event in events]


def run_demo(url: str, out: TextIO = sys.stdout) -> bool:
    """Run the demo against a sync-cf backend at ``url``; True if both clients converged."""
    store_id = f"demo-{secrets.token_hex(4)}"

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say(f"\nDemo: store {store_id!r} at {url}")
    with SyncHttpTransport(url, store_id) as alice, SyncHttpTransport(url, store_id) as bob:
        alice.ping()
        backend_id = alice.pull(None)[-1].backend_id
        say(f"  ping ok; backend id {backend_id}")

        alice.push([_event(1, 0, "alice", "buy milk"), _event(2, 1, "alice", "walk dog")], backend_id)
        say("  alice pushed 2 events on parent 0 -> accepted (head 2)")

        bob_pending = [_event(1, 0, "bob", "call mum")]
        try:
            bob.push(bob_pending, backend_id)
            say("  bob's push was accepted: unexpected")
            return False
        except ServerAheadError as conflict:
            head = conflict.minimum_expected_num
            say(f"  bob pushed 1 event on parent 0 -> ServerAheadError (server head {head})")

        pulled = [event for page in bob.pull(None) for event in page.events]
        head = pulled[-1]["seqNum"]
        say(f"  bob pulled {len(pulled)} events and rebases his pending event onto head {head}")
        rebased = [_event(head + 1, head, "bob", "call mum")]
        bob.push(rebased, backend_id)
        say(f"  bob pushed it again as seqNum {head + 1} -> accepted")
        bob.push(rebased, backend_id)
        say("  bob retried the same push (as after a lost ack) -> acknowledged, nothing duplicated")

        alice_log, bob_log = _log(alice), _log(bob)
        for seq, client, text in alice_log:
            say(f"    #{seq} {client:<5} {text}")
        same = alice_log == bob_log and len(alice_log) == 3
        say("  both clients see the same eventlog: " + ("yes" if same else "NO"))
        return same
