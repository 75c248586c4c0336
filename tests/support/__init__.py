"""What every test tier shares: the repository root, throwaway daemons, test faces, privacy set-up, the PC/SC rig."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
