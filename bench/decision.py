"""Decision latency at the door with a large roster: card, ID document, keyed app code and QR codes.

    python -m bench.decision [--people 50000] [--samples 2000]

Builds a terminal store with N residents (card, ID document and app-code seed each, sealed as the server
sends them), starts a real TerminalRuntime with its broker unreachable (a terminal deciding offline),
waits until its app-code tables are built, and then presents credentials one at a time, timing from
the moment the presentation is queued to the loop until the loop's reply (decision, relay, event kept
in the outbox with its replay-cache entry, all in one SQLite transaction). QR figures include decoding
the code from a 640x480 camera frame with OpenCV; frames are made in memory beforehand.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.report import emit, summary
from gatehouse_core import app_code
from gatehouse_core.configfile import parse_config
from gatehouse_core.credential_hash import hash_card, hash_id_document
from gatehouse_core.keyring import public_key_pem
from gatehouse_core.pass_token import PassClaims, sign_pass
from gatehouse_core.sealed import seal
from gatehouse_core.wire.records import (
    CredentialRecord,
    DoorRecord,
    GroupRecord,
    PersonRecord,
    SiteRecord,
    seed_context,
)
from terminals.config import TerminalConfig
from terminals.drivers.qr import QrDecoder
from terminals.inputs import CardPresented, CodeEntered, IdEntered, Presentation, QrScanned
from terminals.relay import SimulatedRelay
from terminals.runtime import TerminalRuntime
from terminals.store import TerminalStore

SITE = "bench-site"
DOOR = 1


def card_uid(i: int) -> str:
    return f"04{i:012X}"


def id_number(i: int) -> str:
    return f"G{i:09d}"


def build_store(path: Path, people: int, credential_key: bytes, seal_key: bytes) -> list[bytes]:
    """A terminal store holding `people` residents; returns their app-code seeds."""
    store = TerminalStore(path)
    seeds = [os.urandom(20) for _ in range(people)]
    store.apply(
        (),
        [
            SiteRecord(timezone="Asia/Shanghai", face_enabled=True, holidays=()),
            DoorRecord(id=DOOR, face=True, card=True, id_document=True, app_code=True),
            GroupRecord(id=1, doors=(DOOR,), windows=tuple((d, 0, 1440) for d in range(7)), open_on_holidays=True),
            GroupRecord(
                id=2,
                doors=(DOOR,),
                windows=tuple((d, s, e) for d in range(7) for s, e in ((0, 720), (720, 1440))),
                open_on_holidays=True,
            ),
        ],
        None,
    )
    batch: list[PersonRecord] = []
    for i in range(people):
        pseudonym = f"p-{i:016x}"
        batch.append(
            PersonRecord(
                pseudonym=pseudonym,
                groups=(1 + i % 2,),
                credentials=(
                    CredentialRecord(id=3 * i + 1, kind="card", hash=hash_card(credential_key, card_uid(i))),
                    CredentialRecord(
                        id=3 * i + 2, kind="id_document", hash=hash_id_document(credential_key, id_number(i))
                    ),
                    CredentialRecord(
                        id=3 * i + 3,
                        kind="app_code",
                        sealed=seal(seal_key, seeds[i], seed_context(pseudonym, 3 * i + 3)),
                    ),
                ),
            )
        )
        if len(batch) == 1000:
            store.apply((), batch, None)
            batch = []
    store.apply((), batch, 1)
    store.close()
    return seeds


def qr_frame(text: str, rng: random.Random) -> np.ndarray:
    """A 640x480 grey camera frame with the QR as a phone screen would show it, slightly off-centre."""
    qr = segno.make(text, error="m", micro=False)
    matrix = np.array([[0 if dark else 255 for dark in row] for row in qr.matrix], dtype=np.uint8)
    module = max(2, 230 // (len(matrix) + 8))
    image = np.kron(np.pad(matrix, 4, constant_values=255), np.ones((module, module), dtype=np.uint8))
    frame = np.full((480, 640), 90, dtype=np.uint8)
    y, x = rng.randint(20, 480 - image.shape[0] - 20), rng.randint(40, 640 - image.shape[1] - 40)
    frame[y : y + image.shape[0], x : x + image.shape[1]] = image
    noise = np.random.default_rng(rng.randint(0, 2**32)).normal(0, 6, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50000)
    parser.add_argument("--samples", type=int, default=2000, help="presentations per method")
    parser.add_argument("--qr-samples", type=int, default=300, help="QR presentations per kind")
    args = parser.parse_args()
    rng = random.Random(7)
    base = Path(tempfile.mkdtemp(prefix="gh-bench-"))
    credential_key, seal_key = os.urandom(32), os.urandom(32)
    server = Ed25519PrivateKey.generate()
    started = time.perf_counter()
    seeds = build_store(base / "data" / "terminal.db", args.people, credential_key, seal_key)
    build_s = time.perf_counter() - started
    (base / "server.pub.pem").write_bytes(public_key_pem(server.public_key()))
    (base / "seal.key").write_text(seal_key.hex())
    (base / "credential.key").write_text(credential_key.hex())
    config = parse_config(
        TerminalConfig,
        {
            "terminal_id": "t-bench",
            "site": SITE,
            "data_dir": str(base / "data"),
            "server_public_key": str(base / "server.pub.pem"),
            "seal_key_file": str(base / "seal.key"),
            "credential_key_file": str(base / "credential.key"),
            "log_level": "WARNING",
            "control_socket": str(base / "c.sock"),
            # Nothing listens here: the terminal decides offline, as it must be able to.
            "mqtt": {"host": "127.0.0.1", "port": 9, "username": "t-bench"},
        },
    )
    started = time.perf_counter()
    runtime = TerminalRuntime(config, relay=SimulatedRelay())
    load_s = time.perf_counter() - started
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    started = time.perf_counter()
    while runtime.engine.codes.pending(time.time()):
        time.sleep(0.05)
    tables_s = time.perf_counter() - started

    def timed(presentations: list[Presentation]) -> tuple[list[float], int]:
        times, granted = [], 0
        for presentation in presentations:
            t0 = time.perf_counter()
            reply = runtime.present(presentation).result(timeout=30)
            times.append((time.perf_counter() - t0) * 1000)
            granted += bool(reply.get("granted"))
        return times, granted

    def timed_qr(frames: list[np.ndarray]) -> tuple[list[float], int]:
        decoder = QrDecoder()
        times, granted = [], 0
        for frame in frames:
            t0 = time.perf_counter()
            text = decoder.decode(frame)
            if text is None:  # the camera simply tries the next frame; counted as not granted
                times.append((time.perf_counter() - t0) * 1000)
                continue
            reply = runtime.present(QrScanned(DOOR, text)).result(timeout=30)
            times.append((time.perf_counter() - t0) * 1000)
            granted += bool(reply.get("granted"))
        return times, granted

    who = [rng.randrange(args.people) for _ in range(args.samples)]
    results: dict[str, tuple[list[float], int, int]] = {}
    for name, presentations in (
        ("card", [CardPresented(DOOR, card_uid(i)) for i in who]),
        ("id_document", [IdEntered(DOOR, id_number(i)) for i in who]),
    ):
        times, granted = timed(presentations)
        results[name] = (times, granted, len(presentations))
    # Keyed app codes: each person once (a code is single use), computed just before presenting.
    # Distinct people for keyed codes and for QR codes: a code used once is refused as replayed.
    fresh = rng.sample(range(args.people), args.samples + args.qr_samples)
    distinct, qr_people = fresh[: args.samples], fresh[args.samples :]
    codes = [CodeEntered(DOOR, app_code.totp(seeds[i]).now()) for i in distinct]
    times, granted = timed(codes)
    results["app_code"] = (times, granted, len(codes))

    frames = [qr_frame(app_code.AppCodeQr(3 * i + 3, app_code.totp(seeds[i]).now()).text(), rng) for i in qr_people]
    times, granted = timed_qr(frames)
    results["app_code_qr"] = (times, granted, len(frames))
    now = datetime.now(UTC)
    tokens = [
        sign_pass(
            server, SITE, PassClaims(10_000 + n, (DOOR,), now - timedelta(minutes=5), now + timedelta(hours=2), 1)
        )
        for n in range(args.qr_samples)
    ]
    times, granted = timed_qr([qr_frame(t, rng) for t in tokens])
    results["visitor_qr"] = (times, granted, len(tokens))

    runtime.stop_event.set()
    thread.join(30)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("people in the roster", f"{args.people:,}"),
        ("store built in", f"{build_s:.1f} s"),
        ("terminal start (keys, store, seeds unsealed)", f"{load_s:.2f} s"),
        ("app-code tables built while idle in", f"{tables_s:.1f} s"),
    ]
    figures: dict[str, object] = {
        "people": args.people,
        "start_s": load_s,
        "code_tables_s": tables_s,
        "max_rss_mb": rss_mb,
    }
    for name, (times, granted, n) in results.items():
        stats = summary(times)
        rows.append((f"{name} (n={n}, granted {granted})", f"p50 {stats['p50']:.2f} ms  p99 {stats['p99']:.2f} ms"))
        figures[name] = {"p50_ms": stats["p50"], "p99_ms": stats["p99"], "granted": granted, "n": n}
    rows.append(("max RSS", f"{rss_mb:.0f} MB"))
    emit("decision", rows, figures)


if __name__ == "__main__":
    main()
