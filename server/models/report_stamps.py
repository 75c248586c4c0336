"""Version numbers of stored figures that caches key on: a reader that kept figures reads one row to learn
whether they still hold, in every server process alike."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base

# Moves whenever an event is counted on a day before its site's today (a late event), or all are counted again.
PAST_DAY_COUNTS = "past_day_counts"


class ReportStamp(Base):
    """A named version number."""

    __tablename__ = "report_stamps"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
