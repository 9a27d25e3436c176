"""`make run`'s supervision without starting it: the listener's restart counting and the rendered supervisord.conf."""
from __future__ import annotations

import configparser

from deploy._service_events import apply
from deploy.supervise import Supervisor


def test_restarts_count_a_death_and_a_failed_start_but_not_the_first_start():
    services: dict = {}
    apply(services, "PROCESS_STATE_STARTING", {"processname": "worker", "from_state": "STOPPED", "tries": "0"}, 1.0)
    apply(services, "PROCESS_STATE_RUNNING", {"processname": "worker", "from_state": "STARTING", "pid": "41"}, 2.0)
    assert services["worker"]["restarts"] == 0 and services["worker"]["pid"] == 41
    line = apply(services, "PROCESS_STATE_EXITED", {"processname": "worker", "from_state": "RUNNING", "expected": "0",
                                                    "pid": "41"}, 3.0)
    assert "died" in line and services["worker"]["last_exit"] == {"at": 3.0, "pid": 41}
    apply(services, "PROCESS_STATE_STARTING", {"processname": "worker", "from_state": "EXITED", "tries": "0"}, 3.5)
    apply(services, "PROCESS_STATE_BACKOFF", {"processname": "worker", "from_state": "STARTING", "tries": "1"}, 4.0)
    apply(services, "PROCESS_STATE_STARTING", {"processname": "worker", "from_state": "BACKOFF", "tries": "1"}, 5.0)
    assert services["worker"]["restarts"] == 2 and services["worker"]["state"] == "STARTING"
    assert "gave up" in apply(services, "PROCESS_STATE_FATAL", {"processname": "worker", "from_state": "BACKOFF"}, 9.0)


def test_config_restarts_every_program_in_its_own_group_and_escapes_percent(tmp_path):
    sup = Supervisor(tmp_path / "var", env={})
    sup.add("worker", ["celery", "worker", "--hostname", "nasforge-1@%h"], startsecs=5)
    sup.add("api", ["uvicorn", "backend.main:app"])
    conf = configparser.RawConfigParser()
    conf.read_string(sup.render())
    for name in ("worker", "api"):
        prog = conf[f"program:{name}"]
        assert prog["autorestart"] == "true" and prog["stopasgroup"] == "true" and prog["killasgroup"] == "true"
        assert int(prog["startretries"]) > 1, "a program that keeps failing to start is retried with back-off"
    assert conf["program:worker"]["command"].endswith("nasforge-1@%%h"), "supervisor would expand a bare %"
    assert int(conf["program:worker"]["priority"]) < int(conf["program:api"]["priority"]), "started in order"
    assert conf["eventlistener:service-events"]["events"] == "PROCESS_STATE"
    assert len(conf["unix_http_server"]["file"]) < 108, "a unix socket path must fit sun_path"
    sup.stop()
