"""Seed data for the demo: one site, three doors, an access group, twenty residents with cards, one app account,
and, where face models are present, the privacy set-up and one resident enrolled with consent."""

# ruff: noqa: RUF001 - the sample notice's Chinese text uses Chinese (full-width) punctuation, as it should.

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from gatehouse_core.face.types import FaceModel
from gatehouse_core.keyring import ServerKeys
from gatehouse_core.schedule import ALWAYS, Window
from server.models import ConsentChannel, Person, PersonKind, Site
from server.services.access import access, sites
from server.services.access.sites import DoorMethods
from server.services.accounts import app_accounts
from server.services.audit import Actor
from server.services.face import consent, enrollment
from server.services.face.consent import FaceState
from server.services.people import credentials, people
from server.services.privacy import privacy
from server.services.session import DbSession

log = logging.getLogger(__name__)

DEMO_SITE = "maple-court"
DEMO_CARD = "04A2B3C4D5E6F7"
# The first resident (Wang Wei, 1-101) also has the phone app: this username, or this phone for a code.
DEMO_APP_USER = "wangwei"
DEMO_PHONE = "+86 138 0013 8000"
_GIVEN = ["Wei", "Fang", "Min", "Jun", "Lei", "Hui", "Ying", "Tao", "Jing", "Hao"]
_FAMILY = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu"]


def seed_demo(session: DbSession, keys: ServerKeys) -> Site:
    """Create the demo site unless it exists; returns it."""
    existing = session.scalar(select(Site).where(Site.code == DEMO_SITE))
    if existing is not None:
        return existing
    actor = Actor("demo")
    rng = random.Random(7)  # noqa: S311 - demo names, not security
    site = sites.create_site(session, actor, code=DEMO_SITE, name="Maple Court", timezone="Asia/Shanghai")
    north = sites.save_door(session, actor, site, "North gate", DoorMethods(face=True))
    east = sites.save_door(session, actor, site, "East pedestrian gate", DoorMethods())
    garage = sites.save_door(session, actor, site, "Garage", DoorMethods(id_document=True, app_code=True))
    residents = access.create_group(session, actor, site, "Residents", [north, east, garage], ALWAYS.windows)
    access.create_group(
        session,
        actor,
        site,
        "Cleaning staff",
        [east],
        [Window(d, 7 * 60, 19 * 60) for d in range(5)],
        open_on_holidays=False,
    )
    for i in range(20):
        person = people.create_person(
            session,
            actor,
            site,
            full_name=f"{_FAMILY[i % 10]} {_GIVEN[(i * 3) % 10]}",
            unit=f"{1 + i // 4}-{101 + (i % 4)}",
            date_of_birth=date(1950 + rng.randrange(55), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            phone=DEMO_PHONE if i == 0 else None,
        )
        access.add_member(session, actor, residents, person)
        # The first resident's card has a known UID, so the README can show it at the simulated terminal.
        uid = DEMO_CARD if i == 0 else f"04{rng.getrandbits(48):012X}"
        credentials.add_card(session, actor, keys, person, uid)
    return site


def first_resident(session: DbSession, site: Site) -> Person:
    """The demo's first resident (Wang Wei, 1-101): the known card, the app account and, with models, a face."""
    first = session.scalar(
        select(Person).where(Person.site_id == site.id, Person.kind == PersonKind.RESIDENT).order_by(Person.id)
    )
    if first is None:
        raise LookupError(f"the demo site {site.code} has no resident")
    return first


def seed_app_account(session: DbSession, site: Site, password: str) -> None:
    """Turn the phone app on for the site's first resident with this password."""
    app_accounts.enable_account(
        session, Actor("demo"), first_resident(session, site), username=DEMO_APP_USER, password=password
    )


# A sample notice in English and Chinese: what the site's residents read before they consent.
DEMO_NOTICE = privacy.NoticeFields(
    controller="Maple Court Property Management Ltd. / 枫庭物业管理有限公司",
    contact="privacy@maple-court.example, +86 10 5555 0100 / 隐私联系人：privacy@maple-court.example",
    purpose="Opening the compound's gates for residents who choose face entry. / "
    "仅用于为自愿选择刷脸的住户开启小区大门。",
    method="One photo becomes a face template (numbers, not a picture); the photo is dropped at once. / "
    "一张照片生成人脸特征值（数字，不是图片），照片随即丢弃。",
    storage="Encrypted on the property's server and on the terminals of the doors you may use. / "
    "加密保存在物业服务器和您有权通行的门禁终端上。",
    retention="Until you withdraw or move out, or 365 days after your face last opened a door. / "
    "保存至您撤回同意或迁出为止，或最后一次刷脸开门后365天。",
    rights="You may see, correct and delete your data and ask how it is used. / "
    "您可以查阅、更正、删除您的数据，并了解其使用情况。",
    withdrawal="At the desk, in the console or in the app; your template is deleted everywhere. / "
    "可在前台、管理后台或手机应用中撤回，您的特征值将在所有地方删除。",
)
DEMO_ASSESSMENT = (
    "Face entry is optional at Maple Court: card, ID document and app code open every door face opens. Templates "
    "are sealed, kept only for residents who consent, and deleted with a receipt on withdrawal or move-out. / "
    "枫庭刷脸为自愿选项：刷卡、身份证和手机码可开启所有刷脸可开的门。特征值加密保存，仅限同意的住户，"
    "撤回或迁出时删除并出具回执。"
)


def setup_face(
    session: DbSession, keys: ServerKeys, model: FaceModel, site: Site, photos: Sequence[Path]
) -> tuple[Person, str]:
    """Impact assessment, notice and face on (as a site manager would), then the first resident's consent and
    enrollment from the first usable photo, each once; returns the resident and their face state."""
    actor = Actor("demo")
    today = date.today()
    assessment = privacy.current_assessment(session, site)
    if assessment is None or assessment.review_due < today:
        privacy.attach_assessment(
            session,
            actor,
            site,
            assessed_on=today - timedelta(days=1),
            author="Wang Fang, DPO / 王芳，数据保护负责人",
            review_due=today + timedelta(days=365),
            summary=DEMO_ASSESSMENT,
        )
    notice = privacy.current_notice(session, site) or privacy.publish_notice(session, actor, site, DEMO_NOTICE)
    session.flush()
    if not (site.face_enabled and site.face_model_id == model.model_id):
        privacy.enable_face(session, actor, site, model.model_id)
        session.flush()
    resident = first_resident(session, site)
    # The demo asks once: a resident who has since withdrawn or declined (in the console, say) is left alone.
    if photos and not resident.consents and resident.face_declined_at is None:
        given = consent.give_consent(session, actor, resident, notice_sha256=notice.sha256, channel=ConsentChannel.DESK)
        for photo in photos:
            try:
                enrollment.enroll_photo(session, actor, keys, model, resident, given, photo.read_bytes())
            except enrollment.PhotoRejected as exc:
                log.info("demo photo %s not usable for enrollment (%s); trying the next", photo.name, exc.code)
                continue
            break
        session.flush()
    return resident, consent.face_status(session, resident).state.value


def face_enrolled(state: str) -> bool:
    """Whether a face state means the person's face opens doors."""
    return state == FaceState.ENROLLED.value
