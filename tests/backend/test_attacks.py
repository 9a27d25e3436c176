"""The attacks of issue 15, each against a live server (SQLite and PostgreSQL): refused with the right status, and
nothing changed (the admin token still works, no token or run is created, no path outside the data roots taken)."""
from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import httpx
from sqlmodel import Session, select

from backend import crud
from backend.core.config import Settings
from backend.core.db import get_engine
from backend.core.redact import redact
from backend.core.security import create_admin_token, create_user, issue_token
from backend.models import ApiToken, Run
from nas_core.config import ExperimentConfig
from tests._home import platform_home
from tests.backend.conftest import SERVER_TOKEN_CAP, Tokens


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token_count(session: Session) -> int:
    session.expire_all()
    return len(session.exec(select(ApiToken)).all())


def test_lesser_tokens_cannot_revoke_greater_ones_or_mint_and_the_cap_holds(server):
    s, url, admin = server["session"], server["url"], server["headers"]
    tokens = Tokens(s)
    admin_id = int(server["token"].split("_")[1])
    admin_user = s.get(ApiToken, admin_id).user_id
    _, admins_own_writer = issue_token(s, scopes=["write"], user_id=admin_user, name="lesser")
    before = _token_count(s)
    # The reported attack: a read token revoking the admin token. Then the same user's write token trying it.
    for lesser, want in ((tokens.read, 403), (_h(admins_own_writer), 403), (tokens.write, 404)):
        assert httpx.delete(f"{url}/api/tokens/{admin_id}", headers=lesser).status_code == want
    assert httpx.get(f"{url}/api/users", headers=admin).status_code == 200, "the admin token must still work"
    # A read token mints nothing; a writer cannot mint an admin.
    assert httpx.post(f"{url}/api/tokens", json={"scopes": ["read"]}, headers=tokens.read).status_code == 403
    assert httpx.post(f"{url}/api/tokens", json={"scopes": ["admin"]}, headers=tokens.write).status_code == 403
    assert httpx.get(f"{url}/api/tokens", headers=tokens.read).status_code == 403
    assert _token_count(s) == before

    # The cap counts live tokens: dave holds one, so cap - 1 more, then 429; revoking one frees a place.
    dave = create_user(s, "dave")
    _, own = issue_token(s, scopes=["write"], user_id=dave.id)
    made = [httpx.post(f"{url}/api/tokens", json={"name": f"t{i}"}, headers=_h(own)) for i in range(SERVER_TOKEN_CAP - 1)]
    assert [r.status_code for r in made] == [201] * (SERVER_TOKEN_CAP - 1)
    r = httpx.post(f"{url}/api/tokens", json={}, headers=_h(own))
    assert r.status_code == 429 and "NASFORGE_MAX_TOKENS_PER_USER" in r.json()["detail"]
    assert httpx.delete(f"{url}/api/tokens/{made[0].json()['id']}", headers=_h(own)).status_code == 204
    assert httpx.post(f"{url}/api/tokens", json={}, headers=_h(own)).status_code == 201
    assert httpx.post(f"{url}/api/tokens", json={}, headers=_h(own)).status_code == 429

    # Expiry is shown, and once past the token is refused (and no longer counts against the cap).
    short = httpx.post(f"{url}/api/tokens", json={"expires_in": 3600}, headers=tokens.write).json()
    left = dt.datetime.fromisoformat(short["expires_at"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=59) < left <= dt.timedelta(hours=1)
    assert httpx.get(f"{url}/api/users/me", headers=_h(short["token"])).status_code == 200
    listed = {t["id"]: t for t in httpx.get(f"{url}/api/tokens", headers=tokens.write).json()}
    assert listed[short["id"]]["expires_at"] == short["expires_at"] and listed[short["id"]]["last_used_at"]
    row = s.get(ApiToken, short["id"])
    row.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    s.add(row)
    s.commit()
    assert httpx.get(f"{url}/api/users/me", headers=_h(short["token"])).status_code == 401
    assert httpx.post(f"{url}/api/tokens", json={"expires_in": 5}, headers=tokens.write).status_code == 422


def test_data_paths_and_launch_resources_stay_inside_the_rules(server, tmp_path):
    s, url, h = server["session"], server["url"], server["headers"]
    settings: Settings = server["settings"]
    root = (settings.data_dir / "data").resolve()
    (root / "ds").mkdir(parents=True)
    (root / "to-etc").symlink_to("/etc")
    other_run, _ = crud.launch(s, crud.create_experiment(s, ExperimentConfig(name="other"), None), baselines=False,
                               runs_dir=settings.runs_dir)
    Path(other_run.run_dir).mkdir(parents=True)

    def experiment(path: str, method: str = "POST", target: str = "/api/experiments") -> httpx.Response:
        body = {"name": "d", "data": {"source": "prepared", "path": path}}
        return httpx.request(method, f"{url}{target}", json=body, headers=h)

    outside = ["/etc", "../../../../etc", "/etc/no-such-dir", "/no/such/dir", other_run.run_dir,
               str(settings.runs_dir / "424242"), str(root / "to-etc"), str(root / "ds" / ".." / ".." / "runs"), "../runs/1"]
    answers = [experiment(p) for p in outside]
    assert {r.status_code for r in answers} == {422}
    messages = {r.json()["detail"] for r in answers}
    assert len(messages) == 1, messages  # one message: it never tells whether the path exists
    (message,) = messages
    assert message.startswith("data.path: ") and str(root) in message and "/etc" not in message

    made = experiment(str(root / "ds"))
    assert made.status_code == 201 and made.json()["config"]["data"]["path"] == str(root / "ds")
    rel = experiment("ds")  # relative: inside the data roots (the caller does not know the server's cwd), stored resolved
    assert rel.status_code == 201 and rel.json()["config"]["data"]["path"] == str(root / "ds")
    exp_id = made.json()["id"]
    assert experiment("/etc", "PUT", f"/api/experiments/{exp_id}").json()["detail"] == message

    # An experiment from before the roots (written straight to the database) cannot be launched either.
    old = crud.create_experiment(s, ExperimentConfig(name="old", data={"source": "prepared", "path": "/etc"}), None)
    runs_before = httpx.get(f"{url}/api/runs", headers=h).json()["total"]
    r = httpx.post(f"{url}/api/experiments/{old.id}/runs", json={}, headers=h)
    assert r.status_code == 422 and r.json()["detail"] == message

    # Launch resources obey the experiment's own schema, and name the field as the caller wrote it.
    launch = f"{url}/api/experiments/{exp_id}/runs"
    for resources, field in (({"slurm": {"partition": "gpu\n#SBATCH --uid=0"}}, "resources.slurm.partition"),
                             ({"slurm": {"account": "$(id)"}}, "resources.slurm.account"),
                             ({"partition": "x"}, "resources.partition"),
                             ({"processes": 0}, "resources.processes"),
                             ({"kind": "pbs"}, "resources.kind")):
        r = httpx.post(launch, json={"resources": resources, "baselines": False}, headers=h)
        assert r.status_code == 422 and r.json()["detail"].startswith(field), (resources, r.text)
    r = httpx.post(launch, json={"launcher": "local", "resources": {"kind": "slurm"}}, headers=h)
    assert r.status_code == 422 and "resources.kind" in r.json()["detail"]
    assert httpx.get(f"{url}/api/runs", headers=h).json()["total"] == runs_before

    # The stored launcher is the one the worker will use, whichever field named it.
    for body in ({"resources": {"kind": "slurm", "slurm": {"partition": "gpu"}}}, {"launcher": "slurm"}):
        run = httpx.post(launch, json={**body, "baselines": False}, headers=h).json()["run"]
        assert run["launcher"] == "slurm" and run["resources"]["kind"] == "slurm", run
        detail = httpx.get(f"{url}/api/runs/{run['id']}", headers=h).json()
        assert detail["config"]["launcher"] == run["resources"]
    assert run["resources"]["slurm"]["time"] == "01:00:00"  # a partial slurm section keeps the other defaults


def test_the_worker_refuses_a_data_path_outside_the_roots(tmp_path, redis_db_url):
    """The second gate: a run whose stored config points outside (written before the roots, or the roots narrowed)
    fails at submit with the same message, and no launcher is started."""
    from worker.control import submit

    with platform_home(tmp_path / "var", redis_db_url, "true") as home:
        settings = Settings()
        with Session(get_engine(settings), expire_on_commit=False) as s:
            exp = crud.create_experiment(s, ExperimentConfig(name="w", data={"source": "prepared", "path": "/etc"}), None)
            run, _ = crud.launch(s, exp, baselines=False)
            submit(s, run, resume=False)
            s.refresh(run)
            assert run.status == "failed" and "data.path: must lie inside an allowed data root" in run.status_reason
            assert run.pid is None and run.job_id is None
            assert home["home"] == settings.data_dir


def test_no_secret_in_the_platform_logs_after_streams_were_served(platform):
    """A browser-like client follows a run over SSE (ticket, EventSource headers); an old client still sends its
    token in the query. `grep -r nf_` over the platform's logs finds nothing, and the logs are 0600."""
    settings = Settings(data_dir=platform["data_dir"], redis_url=platform["env"]["REDIS_URL"])
    with Session(get_engine(settings), expire_on_commit=False) as s:
        token = create_admin_token(s, "log-test")
        exp = crud.create_experiment(s, ExperimentConfig(name="logs", baseline={"random": False}), None)
        run, _ = crud.launch(s, exp, baselines=False)
        crud.set_run_status(s, run.id, "cancelled", status_reason="test")  # before the worker could start it
        crud.ingest_events(s, run.id, [{"seq": 1, "kind": "log", "payload": {"msg": "hi"}}], redis=None)
    base, path = platform["url"], f"/api/runs/{run.id}/stream"
    ticket = httpx.post(f"{base}/api/streams/ticket", json={"path": path}, headers=_h(token)).json()["ticket"]
    browser = {"Accept": "text/event-stream", "Cache-Control": "no-cache", "User-Agent": "Mozilla/5.0 (test)"}
    with httpx.stream("GET", f"{base}{path}?since=0&ticket={ticket}", headers=browser, timeout=30) as r:
        assert r.status_code == 200
        assert "event: end" in r.read().decode()
    assert httpx.get(f"{base}{path}?since=0&access_token={token}", headers=browser).status_code == 401
    assert httpx.get(f"{base}/api/runs?token={token}", headers=_h(token)).status_code == 200
    logs = platform["data_dir"] / "logs"
    files = [p for p in logs.rglob("*") if p.is_file()]
    assert any(b"access_token=[redacted]" in p.read_bytes() for p in files)  # the requests were logged...
    leaked = [p for p in files if b"nf_" in p.read_bytes()]
    assert not leaked, f"a token reached {leaked}"  # ...without the secret
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in files), [(p, oct(os.stat(p).st_mode)) for p in files]


def test_redaction_blanks_credentials_in_any_logged_text():
    line = 'GET /api/runs/1/stream?since=0&access_token=nf_12_abc-DEF_x&ticket=st_q HTTP/1.1" 200 Bearer nf_3_zz'
    out = redact(line)
    assert "nf_" not in out and "st_q" not in out and "since=0" in out
    assert redact("/api/x?Token=abc&y=1") == "/api/x?Token=[redacted]&y=1"
