"""The MLflow store is checked before a study writes anything: one line naming the store, in seconds."""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.helpers.cli import run_main
from tuner.errors import TunerError
from tuner.tracking.check import check_store


@pytest.fixture()
def server():
    """A real HTTP server on the loopback answering /health with the status the test sets."""
    answer = {"status": 200}

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's hook
            self.send_response(answer["status"] if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", answer
    httpd.shutdown()


def test_local_stores_pass_without_a_network(tmp_path):
    for uri in (f"sqlite:///{tmp_path}/m.db", str(tmp_path / "mlruns"), f"file://{tmp_path}/mlruns"):
        check_store(uri)


def test_an_unknown_scheme_is_refused_naming_the_accepted_ones():
    with pytest.raises(TunerError, match="unknown MLflow store scheme 'bogus'; accepted: a path, sqlite"):
        check_store("bogus://nowhere")


def test_a_server_that_answers_passes_and_one_that_refuses_the_credentials_says_so(server):
    uri, answer = server
    check_store(uri)
    answer["status"] = 401
    with pytest.raises(TunerError, match="refused the credentials .* MLFLOW_TRACKING_USERNAME"):
        check_store(uri)
    answer["status"] = 503
    with pytest.raises(TunerError, match="answered HTTP 503"):
        check_store(uri)


def test_nothing_listening_is_refused():
    with pytest.raises(TunerError, match="http://127.0.0.1:1 does not answer"):
        check_store("http://127.0.0.1:1")


@pytest.mark.parametrize("uri", ["bogus://nowhere", "http://127.0.0.1:1"])
def test_the_command_line_says_it_in_one_line_and_writes_nothing(uri, tmp_path, capfd):
    results = tmp_path / "results"
    proc = run_main(
        "run", "steel_binary", "--tracking-uri", uri, "--results-dir", str(results), cwd=tmp_path, capfd=capfd
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and uri in lines[0]
    assert not results.exists()


def test_the_spool_keeps_writes_in_order_and_drops_a_torn_last_line(tmp_path):
    from tuner.tracking.spool import Spool

    spool = Spool(tmp_path / "spool.jsonl")
    spool.append("_start_child", ("t1", "trial-001", {"x": 0.5}, {}))
    spool.append("_log_metrics", ("t1", {"val": 1.0}, 1))
    with (tmp_path / "spool.jsonl").open("a") as out:
        out.write('{"op": "_end_child", "args": ["t1"')  # a driver killed mid-line
    again = Spool(tmp_path / "spool.jsonl")
    assert again.pending == 2
    assert [r["op"] for r in again.records()] == ["_start_child", "_log_metrics"]
    again.keep(again.records()[1:])
    assert Spool(tmp_path / "spool.jsonl").records() == [{"op": "_log_metrics", "args": ["t1", {"val": 1.0}, 1]}]
    again.keep([])
    assert not (tmp_path / "spool.jsonl").exists() and again.pending == 0
