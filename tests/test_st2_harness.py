"""The StackStorm harness itself, without StackStorm: the sandbox's generated configuration (a
real MongoDB by URL, shifted ports, loopback only), the README blocks the StackStorm tests run,
their placeholders, and the loopback proxy that makes a broker unreachable."""
import socket
import sys

import pytest

from ceph_env import REPO
from st2_env import TcpProxy, command_words, readme_blocks

sys.path.insert(0, str(REPO / "sandbox"))
import st2_sandbox  # noqa: E402


def _conf(monkeypatch, tmp_path, **env):
    for key in ("CEPH_MIGRATE_ST2_MONGO_URL", "CEPH_MIGRATE_ST2_PORT_OFFSET"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    p = st2_sandbox.Paths(str(tmp_path / "state"), venv=str(tmp_path / "venv"))
    ports = st2_sandbox.Ports.shifted(st2_sandbox.port_offset())
    return st2_sandbox.st2_conf(p, ports), ports


def _section(conf, name):
    body = conf.split("[%s]\n" % name, 1)[1].split("\n\n", 1)[0]
    return dict(line.split(" = ", 1) for line in body.splitlines())


def test_the_database_is_the_stand_in_unless_a_mongodb_url_is_given(monkeypatch, tmp_path):
    conf, ports = _conf(monkeypatch, tmp_path)
    assert _section(conf, "database") == {"host": "127.0.0.1", "port": str(ports.mongo),
                                          "db_name": "st2"}
    url = "mongodb://st2:secret@127.0.0.1:27017/st2?authSource=admin"
    conf, _ = _conf(monkeypatch, tmp_path, CEPH_MIGRATE_ST2_MONGO_URL=url)
    assert _section(conf, "database") == {"host": url, "db_name": "st2"}


def test_every_port_shifts_and_listens_on_loopback_only(monkeypatch, tmp_path):
    base, _ = _conf(monkeypatch, tmp_path)
    shifted, ports = _conf(monkeypatch, tmp_path, CEPH_MIGRATE_ST2_PORT_OFFSET="1000")
    assert ports == st2_sandbox.Ports(10100, 10101, 10102, 28027, 7389, 6692, 5389)
    for name, port in (("api", ports.api), ("auth", ports.auth), ("stream", ports.stream)):
        assert _section(shifted, name)["host"] == "127.0.0.1"
        assert _section(shifted, name)["port"] == str(port)
    assert _section(shifted, "messaging")["url"] == "amqp://guest:guest@127.0.0.1:6692//"
    assert _section(shifted, "coordination")["url"] == "redis://127.0.0.1:7389"
    assert base != shifted


def test_packs_configs_and_virtualenvs_are_where_stackstorm_puts_them(monkeypatch, tmp_path):
    conf, _ = _conf(monkeypatch, tmp_path)
    assert _section(conf, "system")["base_path"] == "/opt/stackstorm"
    assert _section(conf, "content")["packs_base_paths"] == "/opt/stackstorm/packs"
    assert _section(conf, "actionrunner")["virtualenv_opts"] == ""


def test_the_readme_install_section_has_the_blocks_the_tests_run():
    install, first_run = readme_blocks("Install in StackStorm")[:2]
    assert install[0].startswith("st2 pack install file:///path/to/ceph_migrate")
    assert any(line.startswith("$EDITOR /opt/stackstorm/configs/ceph_migrate.yaml")
               for line in install)
    assert all("--encrypt" in line for line in install if line.startswith("st2 key set"))
    assert install[-1].startswith("st2ctl reload --register-configs --register-sensors")
    assert [line.split()[:2] for line in first_run][:2] == [["st2", "run"], ["st2", "run"]]


def test_placeholders_are_replaced_quoted_and_none_is_left():
    words = command_words("st2 key set k '<a secret>' --encrypt  # comment",
                          {"<a secret>": "it's $x y"})
    assert words == ["st2", "key", "set", "k", "it's $x y", "--encrypt"]
    assert command_words("st2 pack install file:///path/to/ceph_migrate",
                         {"/path/to/ceph_migrate": "/src/pack"})[-1] == "file:///src/pack"
    with pytest.raises(AssertionError, match="no value"):
        command_words("st2 inquiry respond <inquiry id>", {})


def _echo_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(conn.recv(100))
            conn.close()

    import threading
    threading.Thread(target=serve, daemon=True).start()
    return server


def _through(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"ping")
        return conn.recv(100)


def test_the_proxy_forwards_refuses_when_cut_and_forwards_again():
    server = _echo_server()
    proxy = TcpProxy(server.getsockname()[1])
    try:
        assert _through(proxy.port) == b"ping"
        proxy.cut()
        with pytest.raises(ConnectionRefusedError):
            _through(proxy.port)
        proxy.restore()
        assert _through(proxy.port) == b"ping"
    finally:
        proxy.cut()
        server.close()
