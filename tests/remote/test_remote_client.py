"""`nasforge remote` against the real platform (API + Celery worker running `nasforge search`): a tiny search
submitted, followed live to its end, listed, its artifacts fetched; and the token's rules (never argv, a file
only its owner can read)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nas_core.cli import app
from nas_core.client import ClientError, parse_sse, read_token

pytestmark = pytest.mark.slow


def test_a_tiny_search_end_to_end_through_the_remote_client(remote_run, tmp_path):
    followed = remote_run["follow"]
    run_id, env, auth = remote_run["run_id"], remote_run["env"], ["--token-file", str(remote_run["token_file"])]
    # Followed from its first event to the stream's end: every stage came by, and the exit code says it succeeded.
    assert followed.exit_code == 0, followed.output
    for stage in ("search", "decode", "retrain", "evaluate"):
        assert f"status running {stage}" in followed.output, followed.output
    assert "search epoch 1/1" in followed.output and f"run {run_id} succeeded" in followed.output

    runner = CliRunner()
    listed = runner.invoke(app, ["remote", "runs", *auth], env=env)
    assert listed.exit_code == 0 and any(line.split()[:2] == [str(run_id), "succeeded"]
                                         for line in listed.output.splitlines()), listed.output

    out = tmp_path / "fetched"
    fetched = runner.invoke(app, ["remote", "fetch", str(run_id), "genotype.json", "--out", str(out), *auth], env=env)
    assert fetched.exit_code == 0, fetched.output
    genotype = json.loads((out / "genotype.json").read_text())
    assert set(genotype["cells"]) == {"normal", "down", "up"}
    missing = runner.invoke(app, ["remote", "fetch", str(run_id), "no/such", "--out", str(out), *auth], env=env)
    assert missing.exit_code == 1 and "has no artifact 'no/such'" in missing.output


def test_the_token_is_never_an_argument_and_its_file_is_private(tmp_path):
    token = tmp_path / "token"
    token.write_text("nf_secret\n")
    token.chmod(0o644)
    with pytest.raises(ClientError, match=r"mode 0644 lets other users read the token; refusing it: run `chmod 600"):
        read_token(token, env={})
    r = CliRunner().invoke(app, ["remote", "runs", "--server", "http://127.0.0.1:9", "--token-file", str(token)],
                           env={"NASFORGE_TOKEN": ""})
    assert r.exit_code == 2 and "chmod 600" in r.output
    token.chmod(0o600)
    assert read_token(token, env={}) == "nf_secret"
    assert read_token(env={"NASFORGE_TOKEN": "nf_env"}) == "nf_env"
    with pytest.raises(ClientError, match="no token: set NASFORGE_TOKEN"):
        read_token(tmp_path / "none", env={})
    assert "--token " not in CliRunner().invoke(app, ["remote", "runs", "--help"]).output
    # The stream's framing as the API writes it (backend/core/follow.py): keepalives skipped, `end` named.
    lines = ["retry: 2000", "", ": keepalive", "", "id: 1", 'data: {"seq":1}', "", "event: end", 'data: {"status":"x"}', ""]
    assert list(parse_sse(iter(lines))) == [("message", "1", '{"seq":1}'), ("end", "1", '{"status":"x"}')]
