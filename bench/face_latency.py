"""Face entry latency at the door: camera frame to decision, with N face templates on the terminal.

    python -m bench.face_latency [--gallery 50000 ...] [--engine insightface|opencv] [--samples 300]

For each N a terminal store is built with N people holding one sealed template each: the faces-dev people
enrolled from their first photo (every fourth person held out as a stranger) and synthetic fill (random unit
vectors) up to N. A real TerminalRuntime then starts in a fresh process (so peak memory is per N) with its
broker unreachable (deciding offline), a [face] section and one camera at the door, but no camera driver:
the benchmark hands frames to the face service itself. Once the gallery holds N templates, each sample is
one presentation: 640x480 frames made from one of the person's *other* photos (shifted, fresh sensor noise),
the first frame untimed (it opens the presentation; the PAD needs two agreeing frames), then timed from the
frame that completes the presentation to the loop's reply: detection, alignment, embedding, 1:N search, PAD,
the decision, relay pulse and the event committed to SQLite. Nobody in front of the camera for
presence_gap_s ends the presentation before the next. Detection, embedding and search are also timed on
their own on the same frames. Strangers' presentations (never enrolled) are counted as false grants if any
is let in.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.face_data import DEFAULT_MODEL_DIRS
from bench.face_roster import DOOR, Cast, build_face_store, door_frame, empty_frame, enrol_cast, read_photo
from bench.report import emit, summary
from gatehouse_core.configfile import parse_config
from gatehouse_core.face.config import FaceEngineConfig
from gatehouse_core.face.quality import estimate_pose
from gatehouse_core.face.types import Image
from gatehouse_core.keyring import public_key_pem
from terminals.config import TerminalConfig
from terminals.drivers.face import DoorFaceSettings
from terminals.face_service import FaceService
from terminals.relay import SimulatedRelay
from terminals.runtime import TerminalRuntime

DEFAULT_GALLERIES = (1000, 10000, 50000, 100000)
GOAL_N, GOAL_P95_MS = 50000, 60.0
PRESENCE_GAP_S = 0.05
MAX_FRAMES = 8  # a presentation that needs more frames than this is counted as undecided
WARMUP = 5


@dataclass(frozen=True)
class Run:
    """What one measuring process needs: the store, the engine, the people to present."""

    gallery: int
    base: Path
    engine: str
    model_dir: Path
    threads: int
    samples: int
    impostors: int
    genuine: list[tuple[str, list[Path]]]
    """(pseudonym, probe photos) of the enrolled real people."""
    strangers: list[list[Path]]
    profile: bool


@dataclass
class Presentation:
    """One person in front of the camera until a decision."""

    frames: int = 0
    first_ms: float = 0.0
    total_ms: float = 0.0
    look_ms: float = 0.0
    loop_ms: float = 0.0
    person: str | None = None
    granted: bool = False
    score: float = 0.0


def face_service(runtime: TerminalRuntime) -> FaceService:
    """The runtime's face service, loaded."""
    faces = runtime.faces
    assert faces is not None and faces.model is not None and faces.index is not None
    return faces


def present(runtime: TerminalRuntime, photo: Image, rng: random.Random) -> tuple[Presentation, Image]:
    """Hold one person's photo to the camera, frame after frame, until the face service submits an attempt."""
    faces = face_service(runtime)
    result = Presentation()
    sx, sy = rng.randint(-8, 8), rng.randint(-6, 6)
    frame = empty_frame()
    for k in range(MAX_FRAMES):
        frame = door_frame(photo, shift=(sx + k * rng.choice((-2, 2)), sy + k), seed=rng.randrange(2**32))
        t0 = time.perf_counter()
        attempt = faces.look(DOOR, frame)
        t1 = time.perf_counter()
        result.frames = k + 1
        if k == 0:
            result.first_ms = (t1 - t0) * 1000
        if attempt is None:
            continue
        reply = runtime.present(attempt).result(timeout=30)
        t2 = time.perf_counter()
        result.look_ms, result.loop_ms, result.total_ms = (t1 - t0) * 1000, (t2 - t1) * 1000, (t2 - t0) * 1000
        result.person, result.score = attempt.person, attempt.score
        result.granted = bool(reply.get("granted"))
        break
    # Walk away: nobody at the door for presence_gap_s ends the presentation.
    time.sleep(PRESENCE_GAP_S * 1.2)
    faces.look(DOOR, empty_frame())
    return result, frame


def parts(runtime: TerminalRuntime, frame: Image) -> tuple[float, float, float] | None:
    """Detection, embedding (with alignment) and search times in ms for one frame, each on its own."""
    faces = face_service(runtime)
    assert faces.model is not None and faces.index is not None
    model, gallery, side = faces.model, faces.index.gallery, faces.config.detect_side
    t0 = time.perf_counter()
    found = model.detect(frame, side)
    t1 = time.perf_counter()
    if not found:
        return None
    vector = model.embed(frame, max(found, key=lambda f: f.size))
    t2 = time.perf_counter()
    gallery.search(vector)
    t3 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000


def current_rss_mb() -> float | None:
    """This process's resident memory now (Linux), or None."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def why_undecided(runtime: TerminalRuntime, frame: Image) -> str:
    """Why a presentation got no attempt within MAX_FRAMES frames, judged on its last frame only."""
    faces = face_service(runtime)
    assert faces.model is not None
    found = faces.model.detect(frame, faces.config.detect_side)
    if not found:
        return "no face detected"
    face = max(found, key=lambda f: f.size)
    if face.size < faces.config.near_zone_px:
        return f"face smaller than near_zone_px ({face.size:.0f} px)"
    pose = estimate_pose(face.landmarks)
    if max(abs(pose.yaw), abs(pose.pitch)) > DoorFaceSettings().max_turn_deg:
        return "head turned past max_turn_deg"
    return "matched but never accepted (PAD)"


def measure(run: Run) -> dict[str, Any]:
    """Start a terminal on the run's store, present faces and return the figures (in its own process)."""
    config = parse_config(
        TerminalConfig,
        {
            "terminal_id": "t-bench",
            "site": "bench-site",
            "data_dir": str(run.base / "data"),
            "server_public_key": str(run.base / "server.pub.pem"),
            "seal_key_file": str(run.base / "seal.key"),
            "credential_key_file": str(run.base / "credential.key"),
            "log_level": "WARNING",
            "control_socket": str(run.base / "c.sock"),
            # Nothing listens here: the terminal decides offline.
            "mqtt": {"host": "127.0.0.1", "port": 9, "username": "t-bench"},
            "cameras": [{"door": DOOR, "device": 0}],
            "face": {
                "engine": run.engine,
                "model_dir": str(run.model_dir),
                "threads": run.threads,
                "presence_gap_s": PRESENCE_GAP_S,
                # No server answers here; without this the first 10 s of face would be held for sync.
                "sync_wait_s": 0.1,
            },
        },
    )
    started = time.perf_counter()
    runtime = TerminalRuntime(config, relay=SimulatedRelay(), drivers=[])
    start_s = time.perf_counter() - started
    faces = runtime.faces
    assert faces is not None
    thread = threading.Thread(target=runtime.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    while faces.index is None and faces.state.value == "loading":
        time.sleep(0.005)
    model_s = time.perf_counter() - started
    if not faces.wait_ready(600):
        raise RuntimeError(f"face entry did not become ready: {faces.status()}")
    ready_s = time.perf_counter() - started
    assert faces.index is not None and faces.model is not None
    held = len(faces.index.gallery)
    if held != run.gallery:
        raise RuntimeError(f"the gallery holds {held} templates, not {run.gallery}: {faces.status()}")
    threshold = faces.config.policy(faces.model.model_id).threshold(held)
    peak_at_load_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_at_load_mb = current_rss_mb()

    rng = random.Random(run.gallery)
    photos: dict[Path, Image] = {}

    def photo(path: Path) -> Image:
        if path not in photos:
            photos[path] = read_photo(path)
        return photos[path]

    for _ in range(WARMUP):
        _who, probes = rng.choice(run.genuine)
        present(runtime, photo(rng.choice(probes)), rng)

    load_before = os.getloadavg()[0]
    profiler = cProfile.Profile() if run.profile else None
    genuine: list[tuple[str, Presentation]] = []
    split: list[tuple[float, float, float]] = []
    undecided: Counter[str] = Counter()
    for _ in range(run.samples):
        who, probes = rng.choice(run.genuine)
        image = photo(rng.choice(probes))
        if profiler is not None:
            profiler.enable()
        shown, last = present(runtime, image, rng)
        if profiler is not None:
            profiler.disable()
        genuine.append((who, shown))
        # Untimed, between presentations: the parts on their own, on the frame that decided.
        if shown.total_ms > 0:
            timed = parts(runtime, last)
            if timed is not None:
                split.append(timed)
        else:
            undecided[why_undecided(runtime, last)] += 1
    strangers = [present(runtime, photo(rng.choice(rng.choice(run.strangers))), rng)[0] for _ in range(run.impostors)]

    load_after = os.getloadavg()[0]
    runtime.stop_event.set()
    thread.join(30)
    profile_text = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        profile_text = out.getvalue()

    decided = [p for _who, p in genuine if p.total_ms > 0]
    right = sum(1 for who, p in genuine if p.granted and p.person == who)
    wrong = sum(1 for who, p in genuine if p.granted and p.person != who)
    frames = [p.frames for _who, p in genuine if p.total_ms > 0]
    return {
        "gallery": held,
        "engine": run.engine,
        "model_id": faces.model.model_id,
        "threads": run.threads,
        "threshold": threshold,
        "terminal_start_s": start_s,
        "model_load_s": model_s,
        "gallery_load_s": ready_s - model_s,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "max_rss_at_load_mb": peak_at_load_mb,
        "rss_after_load_mb": rss_at_load_mb,
        "gallery_mb": faces.index.gallery.memory_bytes() / 2**20,
        "undecided": dict(undecided),
        "samples": len(genuine),
        "decided": len(decided),
        "granted": right,
        "granted_wrong_person": wrong,
        "grant_rate": right / len(genuine) if genuine else 0.0,
        "frames_to_decide": summary(frames) if frames else None,
        "more_than_two_frames": sum(1 for f in frames if f > 2),
        "frame_to_decision_ms": summary([p.total_ms for p in decided]) if decided else None,
        "face_service_ms": summary([p.look_ms for p in decided]) if decided else None,
        "loop_ms": summary([p.loop_ms for p in decided]) if decided else None,
        "first_frame_ms": summary([p.first_ms for _who, p in genuine]) if genuine else None,
        "detect_ms": summary([s[0] for s in split]) if split else None,
        "embed_ms": summary([s[1] for s in split]) if split else None,
        "search_ms": summary([s[2] for s in split]) if split else None,
        "impostor_samples": len(strangers),
        "false_grants": sum(1 for p in strangers if p.granted),
        "impostor_decision_ms": summary([p.total_ms for p in strangers if p.total_ms > 0]) if strangers else None,
        # Other work on the machine shows here: the benchmark itself keeps about one core busy.
        "load_avg_1m": [load_before, load_after],
        "profile": profile_text,
    }


def build(run_base: Path, gallery: int, cast: Cast, model_id: str) -> tuple[list[str], float]:
    """Write the keys and a store of `gallery` people; returns the real people's pseudonyms and the seconds taken."""
    seal_key = os.urandom(32)
    (run_base / "seal.key").write_text(seal_key.hex())
    (run_base / "credential.key").write_text(os.urandom(32).hex())
    (run_base / "server.pub.pem").write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    started = time.perf_counter()
    pseudonyms = build_face_store(
        run_base / "data" / "terminal.db", gallery, [v for _name, v, _probes in cast.enrolled], model_id, seal_key
    )
    return pseudonyms, time.perf_counter() - started


def _ms(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "n/a"
    return f"p50 {stats['p50']:.1f}  p95 {stats['p95']:.1f}  p99 {stats['p99']:.1f}  mean {stats['mean']:.1f} ms"


def _rows(result: dict[str, Any], build_s: float) -> list[tuple[str, str]]:
    n = f"N={result['gallery']:,}"
    return [
        (f"{n} store built (not timed as terminal work)", f"{build_s:.1f} s"),
        (
            f"{n} terminal start / model load / gallery load",
            f"{result['terminal_start_s']:.2f} s / {result['model_load_s']:.2f} s / {result['gallery_load_s']:.2f} s",
        ),
        (f"{n} threshold (FPIR over N)", f"{result['threshold']:.3f}"),
        (f"{n} frame -> decision", _ms(result["frame_to_decision_ms"])),
        (f"{n}   face service (detect, embed, search, PAD)", _ms(result["face_service_ms"])),
        (f"{n}   loop (decision, relay, event in SQLite)", _ms(result["loop_ms"])),
        (f"{n}   first frame of a presentation (untimed above)", _ms(result["first_frame_ms"])),
        (f"{n} detection alone", _ms(result["detect_ms"])),
        (f"{n} embedding alone (with alignment)", _ms(result["embed_ms"])),
        (f"{n} 1:N search alone", _ms(result["search_ms"])),
        (
            f"{n} enrolled people granted",
            f"{result['granted']} of {result['samples']} ({100 * result['grant_rate']:.1f}%); "
            f"as someone else {result['granted_wrong_person']}; "
            f"no decision within {MAX_FRAMES} frames {result['samples'] - result['decided']}; "
            f"more than 2 frames {result['more_than_two_frames']}",
        ),
        (
            f"{n} enrolled people without a decision, why",
            ", ".join(f"{k}: {v}" for k, v in result["undecided"].items()) or "none",
        ),
        (f"{n} strangers granted (false grants)", f"{result['false_grants']} of {result['impostor_samples']}"),
        (
            f"{n} terminal process memory",
            f"peak RSS {result['max_rss_at_load_mb']:.0f} MB at gallery load, {result['max_rss_mb']:.0f} MB overall; "
            f"RSS {result['rss_after_load_mb'] or 0:.0f} MB after load; gallery arrays {result['gallery_mb']:.0f} MB",
        ),
        (f"{n} machine load (1 min) before / after", "{:.2f} / {:.2f}".format(*result["load_avg_1m"])),
    ]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, action="append", help="templates on the terminal (repeatable)")
    parser.add_argument("--engine", choices=sorted(DEFAULT_MODEL_DIRS), default="insightface")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the shared models folder")
    parser.add_argument("--samples", type=int, default=300, help="presentations of enrolled people per N")
    parser.add_argument("--impostors", type=int, default=100, help="presentations of strangers per N")
    parser.add_argument("--threads", type=int, default=1, help="ONNX threads per model (the terminal keeps a core)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the timed samples to stderr")
    args = parser.parse_args()
    galleries = args.gallery or list(DEFAULT_GALLERIES)
    model_dir = args.model_dir or DEFAULT_MODEL_DIRS[args.engine]

    model = FaceEngineConfig.model_validate({"engine": args.engine, "model_dir": model_dir}).load()
    started = time.perf_counter()
    cast = enrol_cast(model)
    enrol_s = time.perf_counter() - started
    model_id = model.model_id
    del model
    print(
        f"enrolled {len(cast.enrolled)} faces-dev people in {enrol_s:.1f} s ({len(cast.rejected)} rejected), "
        f"{len(cast.strangers)} held out as strangers",
        file=sys.stderr,
    )

    rows: list[tuple[str, str]] = [
        ("engine (model)", f"{args.engine} ({model_id}), {args.threads} ONNX thread(s) per model"),
        ("real enrolled people / strangers", f"{len(cast.enrolled)} / {len(cast.strangers)} (faces-dev)"),
        ("fill templates", "synthetic (random unit vectors) up to N: latency only, not accuracy"),
    ]
    results: list[dict[str, Any]] = []
    for gallery in galleries:
        base = Path(tempfile.mkdtemp(prefix="gh-face-bench-"))
        try:
            print(f"N={gallery:,}: building the store", file=sys.stderr)
            pseudonyms, build_s = build(base, gallery, cast, model_id)
            run = Run(
                gallery=gallery,
                base=base,
                engine=args.engine,
                model_dir=model_dir,
                threads=args.threads,
                samples=args.samples,
                impostors=args.impostors,
                genuine=[(p, probes) for p, (_name, _v, probes) in zip(pseudonyms, cast.enrolled, strict=True)],
                strangers=[photos for _name, photos in cast.strangers],
                profile=args.profile,
            )
            print(f"N={gallery:,}: measuring", file=sys.stderr)
            # A fresh process per N: its peak RSS and load times are the terminal's at that N alone.
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                result = pool.submit(measure, run).result()
        finally:
            shutil.rmtree(base, ignore_errors=True)
        profile = result.pop("profile")
        if profile:
            print(f"N={gallery:,}: profile of the timed samples (benchmark thread)\n{profile}", file=sys.stderr)
        result["store_build_s"] = build_s
        results.append(result)
        rows.extend(_rows(result, build_s))
    at_goal = next((r for r in results if r["gallery"] == GOAL_N), None)
    if at_goal is not None and at_goal["frame_to_decision_ms"] is not None:
        p95 = at_goal["frame_to_decision_ms"]["p95"]
        verdict = "met" if p95 <= GOAL_P95_MS else "missed"
        rows.append((f"goal p95 <= {GOAL_P95_MS:.0f} ms at N={GOAL_N:,}", f"{verdict} (p95 {p95:.1f} ms)"))
    emit(
        "face_latency",
        rows,
        {
            "engine": args.engine,
            "model_id": model_id,
            "threads": args.threads,
            "real_enrolled": len(cast.enrolled),
            "strangers": len(cast.strangers),
            "fill": "synthetic",
            "goal": {"gallery": GOAL_N, "p95_ms": GOAL_P95_MS},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
