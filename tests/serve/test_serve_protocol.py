"""serve.protocol: one write per event-loop step, same bytes in the same order, close flushes first."""
import asyncio

import httpx
import pytest

from pygzlaw.serve.protocol import CoalescingTransport


class _FakeTransport:
    def __init__(self):
        self.writes, self.closed, self.aborted = [], False, False

    def write(self, data):
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = self.closed = True

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1234) if name == "peername" else default


def test_writes_in_one_step_leave_together():
    async def main():
        fake = _FakeTransport()
        t = CoalescingTransport(fake, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(memoryview(b"body"))
        assert fake.writes == []                      # nothing yet: flushed after this step
        await asyncio.sleep(0)
        assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.writelines([b"a", b"b"])
        t.close()                                     # pending bytes go out before the close
        assert fake.writes[-1] == b"ab" and fake.closed
        await asyncio.sleep(0)
        assert len(fake.writes) == 2
        assert t.get_extra_info("peername") == ("127.0.0.1", 1234)   # the rest is delegated
        t2 = CoalescingTransport(_FakeTransport(), asyncio.get_running_loop())
        t2.write(b"x")
        t2.abort()
        await asyncio.sleep(0)
        assert t2._transport.writes == [] and t2._transport.aborted

    asyncio.run(main())


def test_uvicorn_with_the_protocol_serves_keep_alive(tmp_path):
    import socket
    import threading
    import time

    import uvicorn

    from pygzlaw.laws.forms import ChinchillaParams
    from pygzlaw.laws.io import save_law
    from pygzlaw.laws.law import ChinchillaLaw
    from pygzlaw.serve.app import create_app
    from pygzlaw.serve.protocol import CoalescingHttpToolsProtocol

    save_law(ChinchillaLaw(params=ChinchillaParams(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)),
             tmp_path / "plain.json")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(tmp_path), host="127.0.0.1", port=port, log_level="error",
                                           http=CoalescingHttpToolsProtocol))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert th.is_alive() and time.monotonic() < deadline
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:   # one connection, reused
            for i in range(20):
                r = c.post("/laws/plain/predict", json={"n_params": 1e9 * (i + 1), "n_tokens": 2e10})
                assert r.status_code == 200 and r.json()["loss"] > 1.8
            assert c.get("/health").json() == {"status": "ok"}
            assert c.post("/laws/plain/predict", json={"n_params": -1, "n_tokens": 1}).status_code == 422
            assert c.get("/laws/nope").status_code == 404
    finally:
        server.should_exit = True
        th.join(10)


if __name__ == "__main__":
    pytest.main([__file__])
