"""server.ops.broker_files: mosquitto's password file, ACL, TLS material and config, as written from the database."""

from __future__ import annotations

import ipaddress
import os
import pwd
import ssl
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gatehouse_core.wire.base import MAX_MESSAGE_BYTES, encode
from gatehouse_core.wire.messages import (
    MAX_EVENTS_PER_BATCH,
    Decision,
    EntryMethod,
    EventBatch,
    EventRecord,
)
from gatehouse_core.wire.records import MAX_INT
from gatehouse_core.wire.signing import MAGIC
from gatehouse_core.wire.topics import Channel, terminal_topic
from server.cli.main import main
from server.extensions import db
from server.link.publisher import PART_BUDGET
from server.ops.broker_files import (
    MAX_INFLIGHT_MESSAGES,
    MAX_PACKET_SIZE,
    BrokerFilesError,
    BrokerUser,
    TlsFiles,
    acl_text,
    atomic_write,
    config_text,
    ensure_tls,
    largest_signed_payload,
    password_file_text,
    worker_credentials,
    write_broker_files,
)
from server.services.terminals.broker_credentials import generate_password, mosquitto_hash, verify_mosquitto_hash
from server.services.terminals.terminals import provision_terminal
from tests.conftest import TEST_ACTOR, server_config

HASH_A, HASH_B = mosquitto_hash("a-secret"), mosquitto_hash("b-secret")
USERS = [BrokerUser("t-aaaaaaaaaaaa", "maple-court", HASH_A), BrokerUser("t-bbbbbbbbbbbb", "oak-park", HASH_B)]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def entries(text: str) -> list[str]:
    """The lines mosquitto acts on: no comments, no blank lines."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_acl_gives_each_terminal_exactly_its_own_topics():
    assert entries(acl_text("gatehouse-server", USERS)) == [
        "user gatehouse-server",
        "topic readwrite gatehouse/#",
        "user t-aaaaaaaaaaaa",
        "topic write gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/status",
        "topic write gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/birth",
        "topic write gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/ack",
        "topic write gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/events",
        "topic write gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/reply",
        "topic write gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/doors",
        "topic read gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/sync",
        "topic read gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/cmd",
        "topic read gatehouse/maple-court/terminals/t-aaaaaaaaaaaa/receipt",
        "topic read gatehouse/server/status",
        "user t-bbbbbbbbbbbb",
        "topic write gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/status",
        "topic write gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/birth",
        "topic write gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/ack",
        "topic write gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/events",
        "topic write gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/reply",
        "topic write gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/doors",
        "topic read gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/sync",
        "topic read gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/cmd",
        "topic read gatehouse/oak-park/terminals/t-bbbbbbbbbbbb/receipt",
        "topic read gatehouse/server/status",
    ]


def test_password_file_has_the_worker_hashed_now_and_the_stored_terminal_hashes():
    lines = password_file_text("gatehouse-server", "worker-pw", USERS).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["gatehouse-server", "t-aaaaaaaaaaaa", "t-bbbbbbbbbbbb"]
    hashes = dict(line.split(":", 1) for line in lines)
    assert verify_mosquitto_hash("worker-pw", hashes["gatehouse-server"])
    assert not verify_mosquitto_hash("wrong", hashes["gatehouse-server"])
    assert verify_mosquitto_hash("a-secret", hashes["t-aaaaaaaaaaaa"]) and hashes["t-aaaaaaaaaaaa"] == HASH_A
    assert verify_mosquitto_hash("b-secret", hashes["t-bbbbbbbbbbbb"])


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        (BrokerUser("gatehouse-server", "maple-court", HASH_A), "worker's broker username"),
        (BrokerUser("t-cccccccccccc", "maple-court", "plain-text"), "no valid $7$"),
        (BrokerUser("t-cccccccccccc", "maple-court", HASH_A + "\nevil:x"), "no valid $7$"),
        (BrokerUser("T-CCC", "maple-court", HASH_A), "terminal id"),
        (BrokerUser("t-cccccccccccc", "maple/#", HASH_A), "site code"),
    ],
)
def test_unsafe_rows_are_refused_for_both_files(user, problem):
    with pytest.raises(BrokerFilesError, match=problem.replace("$", r"\$")):
        acl_text("gatehouse-server", [user])
    with pytest.raises(BrokerFilesError, match=problem.replace("$", r"\$")):
        password_file_text("gatehouse-server", "pw", [user])


@pytest.mark.parametrize(
    ("mqtt", "problem"),
    [({}, "mqtt.username"), ({"username": "bad name"}, "mqtt.username"), ({"username": "gs"}, "mqtt.password_file")],
)
def test_worker_needs_its_own_account(tmp_path, mqtt, problem):
    with pytest.raises(BrokerFilesError, match=problem):
        worker_credentials(server_config("sqlite:///x.db", tmp_path, mqtt=mqtt))


def test_config_fragment_has_every_directive(tmp_path):
    tls = TlsFiles.inside(tmp_path / "tls")
    text = config_text(
        port=8883,
        bind="0.0.0.0",  # noqa: S104
        tls=tls,
        password_file=tmp_path / "p",
        acl_file=tmp_path / "a",
        persistence=tmp_path / "data",
    )
    assert entries(text) == [
        "per_listener_settings false",
        "allow_anonymous false",
        "listener 8883 0.0.0.0",
        f"cafile {tls.ca_cert}",
        f"certfile {tls.cert}",
        f"keyfile {tls.key}",
        "tls_version tlsv1.2",
        f"password_file {tmp_path / 'p'}",
        f"acl_file {tmp_path / 'a'}",
        "persistence true",
        f"persistence_location {tmp_path / 'data'}/",
        "max_queued_messages 10000",
        f"max_packet_size {MAX_PACKET_SIZE}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
    ]


@pytest.mark.parametrize(("port", "bind"), [(0, "127.0.0.1"), (70000, "127.0.0.1"), (8883, "a b"), (8883, "")])
def test_config_fragment_refuses_bad_listener(tmp_path, port, bind):
    with pytest.raises(BrokerFilesError):
        config_text(
            port=port,
            bind=bind,
            tls=TlsFiles.inside(tmp_path),
            password_file=tmp_path,
            acl_file=tmp_path,
            persistence=tmp_path,
        )


def test_tls_material_ca_signs_broker_cert_with_default_names(tmp_path):
    tls = ensure_tls(tmp_path / "tls")
    assert tls.created
    assert mode(tls.ca_key) == 0o600 and mode(tls.key) == 0o600
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # The key belongs to the certificate and Python's client side accepts the CA.
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.cert, tls.key)
    ssl.create_default_context(cafile=str(tls.ca_cert))


def test_tls_names_are_the_ones_given(tmp_path):
    tls = ensure_tls(tmp_path, ["broker.site.lan", "10.0.0.5", "::1"])
    san = x509.load_pem_x509_certificate(tls.cert.read_bytes()).extensions
    value = san.get_extension_for_class(x509.SubjectAlternativeName).value
    assert value.get_values_for_type(x509.DNSName) == ["broker.site.lan"]
    assert value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("::1")]
    with pytest.raises(BrokerFilesError, match="hostname"):
        ensure_tls(tmp_path / "other", ["not a name"])


def test_existing_tls_material_is_kept_unless_renewal_is_asked(tmp_path):
    first = ensure_tls(tmp_path)
    before = {p: p.read_bytes() for p in (first.ca_cert, first.ca_key, first.cert, first.key)}
    again = ensure_tls(tmp_path, ["other.name"])
    assert not again.created and all(p.read_bytes() == data for p, data in before.items())
    renewed = ensure_tls(tmp_path, ["other.name"], renew_cert=True)
    assert renewed.created
    assert renewed.ca_cert.read_bytes() == before[first.ca_cert] and renewed.ca_key.read_bytes() == before[first.ca_key]
    assert renewed.cert.read_bytes() != before[first.cert]
    ca = x509.load_pem_x509_certificate(renewed.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(renewed.cert.read_bytes()).verify_directly_issued_by(ca)


def test_half_a_ca_is_refused_rather_than_replaced(tmp_path):
    tls = ensure_tls(tmp_path)
    tls.ca_key.unlink()
    ca_cert = tls.ca_cert.read_bytes()
    with pytest.raises(BrokerFilesError, match="half of the CA"):
        ensure_tls(tmp_path, renew_cert=True)
    assert tls.ca_cert.read_bytes() == ca_cert


def test_atomic_write_replaces_the_file_whole_and_sets_the_mode(tmp_path):
    path = tmp_path / "gatehouse.passwd"
    path.write_text("old\n")
    path.chmod(0o644)
    with path.open() as reader:  # what a broker that opened the file before the rewrite sees
        atomic_write(path, b"new\n", 0o600)
        assert reader.read() == "old\n"
    assert path.read_text() == "new\n" and mode(path) == 0o600
    with pytest.raises(BrokerFilesError, match="no user"):
        atomic_write(path, b"never\n", 0o600, owner="no-such-user-here")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gatehouse.passwd"]  # no temp files left behind


@pytest.fixture
def worker_config(app, tmp_path):
    """A server config whose worker has a broker account."""
    secret = tmp_path / "worker_password"
    secret.write_text(generate_password() + "\n")
    base = app.extensions["gatehouse"].config
    return server_config(
        base.database_url, base.key_dir, mqtt={"username": "gatehouse-server", "password_file": str(secret)}
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_write_broker_files_covers_every_site(app, make_site, make_door, worker_config, tmp_path):
    idents = []
    for code in ("maple-court", "oak-park"):
        site = make_site(code)
        made = provision_terminal(db.session, TEST_ACTOR, site, "Gate", [make_door(site)])
        idents.append(made.terminal.ident)
    db.session.commit()
    out = tmp_path / "broker"
    files = write_broker_files(db.session, worker_config, out, port=18883, bind="127.0.0.1")
    assert files.terminals == 2 and files.tls.created and files.ca_cert == out / "tls" / "ca.crt"
    assert set(files.cert_names) == {"localhost", "127.0.0.1"}
    assert mode(files.password_file) == mode(files.acl_file) == 0o600
    users = [line.split(":")[0] for line in files.password_file.read_text().splitlines()]
    assert users == ["gatehouse-server", *idents]
    acl = entries(files.acl_file.read_text())
    assert [line for line in acl if line.startswith("user ")] == [f"user {u}" for u in users]
    assert not any(line.startswith("pattern") for line in acl)
    conf = files.config.read_text()
    assert f"password_file {files.password_file}\n" in conf and f"acl_file {files.acl_file}\n" in conf
    assert f"persistence_location {out / 'persistence'}/\n" in conf and files.persistence_dir.is_dir()
    again = write_broker_files(db.session, worker_config, out, port=18883, bind="127.0.0.1")
    assert not again.tls.created


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_owner_gets_what_mosquitto_reads_but_never_the_ca_key(app, worker_config, tmp_path):
    nobody = pwd.getpwnam("nobody").pw_uid
    files = write_broker_files(db.session, worker_config, tmp_path / "b", port=18883, bind="::1", owner="nobody")
    for path in (files.password_file, files.acl_file, files.config, files.tls.cert, files.tls.key, files.ca_cert):
        assert path.stat().st_uid == nobody, path
    assert files.persistence_dir.stat().st_uid == nobody
    assert files.tls.ca_key.stat().st_uid == 0


def test_cli_writes_the_files_and_reminds_to_reload(tmp_path, key_dir):
    secret = tmp_path / "worker_password"
    secret.write_text("worker-secret\n")
    toml = tmp_path / "server.toml"
    toml.write_text(
        f'database_url = "sqlite:///{tmp_path / "gh.db"}"\nkey_dir = "{key_dir}"\n'
        f'[mqtt]\nusername = "gatehouse-server"\npassword_file = "{secret}"\ntls = true\nport = 8883\n'
    )
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade", "--config", str(toml)]).exit_code == 0
    out = tmp_path / "broker"
    args = ["broker", "files", "--config", str(toml), "--out", str(out), "--port", "18883"]
    result = runner.invoke(main, [*args, "--hostname", "broker.lan", "--hostname", "10.0.0.5"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'gatehouse.passwd'}" in result.output and "created TLS material" in result.output
    assert f"pin {out / 'tls' / 'ca.crt'}" in result.output and "0 terminal(s)" in result.output
    assert "kill -HUP" in result.output
    assert "listener 18883 0.0.0.0\n" in (out / "gatehouse.conf").read_text()
    result = runner.invoke(main, [*args, "--hostname", "other.lan"])
    assert result.exit_code == 0 and "kept existing TLS material" in result.output
    assert "does not name other.lan; use --renew-cert" in result.output
    toml.write_text(toml.read_text().replace('username = "gatehouse-server"\n', ""))
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and "mqtt.username" in result.output


def test_packet_limit_holds_the_largest_legitimate_messages():
    """The broker's limit is derived from the wire contract and fits what Gatehouse itself sends."""
    longest_topic = terminal_topic("s" * 64, "t" * 64, max(Channel, key=lambda ch: len(ch.value)))
    assert largest_signed_payload() == MAX_MESSAGE_BYTES + len(MAGIC) + 64
    assert largest_signed_payload() + len(longest_topic) < MAX_PACKET_SIZE < MAX_MESSAGE_BYTES + 64 * 1024
    # The publisher's parts are cut well under the limit; a full batch of events fits with room to spare.
    assert 2 * PART_BUDGET <= MAX_MESSAGE_BYTES
    at = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
    event = EventRecord(
        uid=str(uuid.uuid4()),
        door=MAX_INT,
        method=EntryMethod.ID_DOCUMENT,
        decision=Decision.GRANT,
        reason="r" * 32,
        person="p-" + "f" * 16,
        pass_id=MAX_INT,
        at=at,
    )
    batch = EventBatch(terminal="t" * 64, events=(event,) * MAX_EVENTS_PER_BATCH)
    assert 2 * len(encode(batch)) <= MAX_MESSAGE_BYTES
