"""Connectivity checks start all at once in a confined call (node/ice/confine.py), not
one per 20 ms: pinned to the aioice 0.13.0 loop this relies on, and exercised on real
aioice objects."""

from __future__ import annotations

import inspect

import aioice
import aioice.ice
from aioice.candidate import Candidate
from aioice.ice import CandidatePair

from node.ice.confine import OverlayConnection


def test_aioice_paces_checks_by_polling_check_periodic():
    assert aioice.__version__ == "0.13.0"
    src = inspect.getsource(aioice.ice.Connection.connect)
    assert "if not self._check_periodic():" in src and "await asyncio.sleep(0.02)" in src
    assert "self.check_start_task(pair)" in inspect.getsource(aioice.ice.Connection._check_periodic)


def pair(port: int, state: CandidatePair.State) -> CandidatePair:
    remote = Candidate("1", 1, "udp", 100, "127.0.0.1", port, "host")
    p = CandidatePair(protocol=None, remote_candidate=remote)  # type: ignore[arg-type]
    p.state = state
    return p


async def test_every_pending_pair_starts_in_one_call():
    conn = OverlayConnection(ice_controlling=True)
    started: list[int] = []
    conn.check_start_task = lambda p: started.append(p.remote_candidate.port)  # type: ignore[method-assign]
    conn._check_list = [
        pair(1, CandidatePair.State.WAITING),
        pair(2, CandidatePair.State.FROZEN),
        pair(3, CandidatePair.State.IN_PROGRESS),
        pair(4, CandidatePair.State.SUCCEEDED),
    ]
    conn._remote_candidates_end = True
    assert conn._check_periodic() is False  # nothing left to pace: connect() stops polling
    assert started == [1, 2]
    conn._remote_candidates_end = False  # trickle: more may come, so connect() polls on
    assert conn._check_periodic() is True
    conn._check_list_done = True
    assert conn._check_periodic() is False
    await conn.close()
