"""Face engine accuracy on a labelled face folder, and the impostor calibration a model needs before use.

    python -m bench.face_accuracy --faces DIR [--engine insightface|opencv] [--model-dir DIR]

DIR holds one sub-folder per person (see bench.face_data). Every image goes through decode, detection at
640, the enrollment gates and embedding. Reported:

- failure to enrol: images failing the enrollment gates, by reason (unreadable and no-face included);
- verification over every pair of embedded images (genuine = same person): TAR at FAR 1e-3 and 1e-4 with
  the empirical thresholds, EER, and the normal fit of the impostor scores (mean, std: the figures that go
  into `face.calibration` / `KNOWN_MODELS`), checked by comparing its thresholds at 1e-3 and 1e-4 with the
  empirical ones; then TAR at the fit's threshold for FAR 1e-6, about what a terminal holding thousands of
  templates uses (FPIR 0.3% / 3,000 templates);
- open-set identification with one gallery image per person: rank-1 rate and FNIR at FPIR 0.3%.

Rates below 1 / (number of negatives) cannot be measured on the folder; the number of pairs and searches,
and how many negatives each empirical threshold lets through, are printed so the granularity is plain.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.face_data import FolderEmbeddings, embed_folder
from bench.face_metrics import eer, far_at, fit_impostors, open_set, pair_scores, tar_at, threshold_at_rate
from bench.report import emit
from gatehouse_core.face.calibration import ImpostorScores, threshold_at

FARS = (1e-3, 1e-4)
TERMINAL_FAR = 1e-6
TARGET_FPIR = 0.003


def _pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _granularity(allowed: int, negatives: int) -> str:
    """Flags a target rate the sample is too small to show (under one negative in `negatives`)."""
    return f"; the target is below 1/{negatives}, so only 0 observed is shown" if allowed == 0 else ""


def _enrolment(data: FolderEmbeddings) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    images = data.images
    failed = sum(data.rejected.values())
    fte = failed / images if images else None
    rows = [
        ("images (people)", f"{images} ({data.people})"),
        ("embedded (a face found)", f"{len(data.labels)}"),
        ("no face found", f"{len(data.no_face)}"),
        ("unreadable files", f"{len(data.unreadable)}"),
        ("failure to enrol", f"{_pct(fte)} ({failed} of {images})"),
    ]
    rows += [(f"  {reason}", f"{count}") for reason, count in data.rejected.items()]
    if data.other_face_gated:
        rows.append(("gates judged another face than embedded", f"{data.other_face_gated}"))
    figures = {
        "images": images,
        "people": data.people,
        "embedded": len(data.labels),
        "no_face": len(data.no_face),
        "unreadable": len(data.unreadable),
        "failure_to_enrol": fte,
        "rejected": data.rejected,
        "other_face_gated": data.other_face_gated,
    }
    return rows, figures


def _verification(data: FolderEmbeddings) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    genuine, impostor = pair_scores(data.vectors, data.labels)
    rows = [("genuine / impostor pairs", f"{len(genuine)} / {len(impostor)}")]
    figures: dict[str, Any] = {"genuine_pairs": len(genuine), "impostor_pairs": len(impostor)}
    if len(impostor) < 2:
        rows.append(("verification", "n/a: fewer than two impostor pairs"))
        return rows, figures
    mean, std = fit_impostors(impostor)
    fit = ImpostorScores(mean=mean, std=std, source=f"{len(impostor)} impostor pairs")
    figures["impostor_fit"] = {"mean": mean, "std": std}
    has_genuine = len(genuine) > 0
    for far in FARS:
        empirical = threshold_at_rate(impostor, far)
        normal = threshold_at(fit, far)
        tar = tar_at(genuine, empirical.threshold) if has_genuine else None
        rows.append(
            (
                f"TAR at FAR {far:g}",
                f"{_pct(tar)} at {empirical.threshold:.4f} "
                f"({empirical.accepted} of {len(impostor)} impostors >= it, {empirical.allowed} allowed"
                f"{_granularity(empirical.allowed, len(impostor))})",
            )
        )
        rows.append(
            (
                f"  normal-fit threshold at FAR {far:g}",
                f"{normal:.4f} (empirical {empirical.threshold:.4f}; observed FAR there "
                f"{far_at(impostor, normal):.2e})",
            )
        )
        figures[f"far_{far:g}"] = {
            "tar": tar,
            "threshold": empirical.threshold,
            "impostors_accepted": empirical.accepted,
            "impostors_allowed": empirical.allowed,
            "fit_threshold": normal,
            "far_at_fit_threshold": far_at(impostor, normal),
        }
    terminal = threshold_at(fit, TERMINAL_FAR)
    terminal_tar = tar_at(genuine, terminal) if has_genuine else None
    rows.append((f"TAR at fit threshold for FAR {TERMINAL_FAR:g}", f"{_pct(terminal_tar)} at {terminal:.4f}"))
    figures[f"fit_far_{TERMINAL_FAR:g}"] = {"tar": terminal_tar, "threshold": terminal}
    if has_genuine:
        equal, at = eer(genuine, impostor)
        rows.append(("EER", f"{_pct(equal, 3)} at {at:.4f}"))
        figures["eer"] = {"eer": equal, "threshold": at}
    rows.append(("impostor normal fit: mean / std", f"{mean:.4f} / {std:.4f}"))
    return rows, figures


def _identification(data: FolderEmbeddings) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    try:
        result = open_set(data.vectors, data.labels, data.enrollable, TARGET_FPIR)
    except ValueError as exc:
        return [("open-set identification", f"n/a: {exc}")], {"open_set": None}
    rows = [
        ("gallery (people not enrolled)", f"{result.gallery_size} ({result.not_enrolled})"),
        ("mated / non-mated searches", f"{result.mated} / {result.non_mated}"),
        ("open-set rank-1", _pct(result.rank1)),
        (
            f"FNIR at FPIR {TARGET_FPIR:g}",
            f"{_pct(result.fnir)} at {result.fpir.threshold:.4f} (FPIR {_pct(result.fpir.achieved)}: "
            f"{result.fpir.accepted} of {result.non_mated} non-mated searches >= it, {result.fpir.allowed} allowed"
            f"{_granularity(result.fpir.allowed, result.non_mated)})",
        ),
    ]
    figures = {
        "open_set": {
            "gallery": result.gallery_size,
            "not_enrolled": result.not_enrolled,
            "mated_searches": result.mated,
            "non_mated_searches": result.non_mated,
            "rank1": result.rank1,
            "target_fpir": TARGET_FPIR,
            "threshold": result.fpir.threshold,
            "fpir": result.fpir.achieved,
            "non_mated_accepted": result.fpir.accepted,
            "non_mated_allowed": result.fpir.allowed,
            "fnir": result.fnir,
        }
    }
    return rows, figures


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--faces", type=Path, required=True, help="labelled folder: one sub-folder per person")
    parser.add_argument("--engine", choices=("insightface", "opencv"), default="insightface")
    parser.add_argument("--model-dir", type=Path, default=None, help="model folder (default: shared models)")
    args = parser.parse_args(argv)
    if not args.faces.is_dir():
        parser.error(f"--faces {args.faces} is not a folder")

    data = embed_folder(args.faces, args.engine, args.model_dir)
    rows: list[tuple[str, str]] = [("engine / model id", f"{args.engine} / {data.model_id} ({data.dim}-d)")]
    figures: dict[str, Any] = {
        "engine": args.engine,
        "model_id": data.model_id,
        "dim": data.dim,
        "faces": str(args.faces),
    }
    for part in (_enrolment, _verification, _identification):
        part_rows, part_figures = part(data)
        rows += part_rows
        figures.update(part_figures)
    rows.append(("seconds per image", f"{data.seconds_per_image:.4f}"))
    figures["seconds_per_image"] = data.seconds_per_image
    emit("face_accuracy", rows, figures)


if __name__ == "__main__":
    main()
