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
from server.services.access.usual_group import set_usual_group
from server.services.accounts import app_accounts
from server.services.audit import Actor
from server.services.face import consent, enrollment
from server.services.face.consent import FaceState
from server.services.people import credentials, people
from server.services.privacy import notice_text, privacy
from server.services.privacy.notice_text import NoticeDraft
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
    # New people join Residents: the console offers it first, not "Cleaning staff" (first by name).
    set_usual_group(session, actor, site, residents)
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


# A sample notice in English and Chinese: what the site's residents read before they consent. It starts from
# the starter texts (the site's retention periods filled in) and completes what only the site can say.
_DEMO_FACTS = {
    "storage": {
        "en": "Encrypted on the property's own server, in the locked equipment room of the management office "
        "(Building 1), and on the terminals of the doors you may use. The terminals compare faces on the device "
        "itself; nothing goes to a cloud service. When a template is deleted, every terminal confirms that it "
        "has deleted its copy.",
        "zh": "加密保存在物业自有的服务器（1号楼物业管理处上锁的机房）和您有权通行的门禁终端上。终端在本机完成比对，"
        "不上传任何云服务。特征值被删除时，每台终端都会确认已删除其副本。",
    },
    "access": {
        "en": "Nobody can view a face template as a picture. The property manager and the duty guard can see "
        "whether you use face entry, and the door records. Nothing is shared with other companies or with the "
        "authorities unless the law requires it.",
        "zh": "任何人都无法把特征值还原为图片查看。物业经理和值班保安可以看到您是否使用刷脸以及开门记录。"
        "除法律要求外，不向其他公司或机构提供。",
    },
    "alternatives": {
        "en": "A key card, your ID document or a code in the phone app open the same doors as your face. To get a "
        "key card: the management office, Building 1, 8:30 to 18:00 every day.",
        "zh": "门卡、身份证件或手机应用中的通行码可以开启与刷脸相同的门。办理门卡：1号楼物业管理处，每天8:30至18:00。",
    },
    "contact": {
        "en": "For questions about your face data or to use your rights, write, call or come to the management "
        "office (Building 1, 8:30 to 18:00 every day). We answer within 15 working days.",
        "zh": "如对人脸数据有疑问或需行使您的权利，请来信、来电或到物业管理处（1号楼，每天8:30至18:00）。"
        "我们将在15个工作日内答复。",
    },
}


def demo_notice(site: Site) -> NoticeDraft:
    """The demo site's notice: the starter texts, completed as a site manager would."""
    starter = notice_text.starter_draft(template_days=site.template_unused_days, event_days=site.event_retention_days)
    return NoticeDraft(
        controller="Maple Court Property Management Ltd. (枫庭物业管理有限公司)",
        contact="privacy@maple-court.example, +86 10 5555 0100",
        sections={**starter.sections, **_DEMO_FACTS},
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
    notice = privacy.current_notice(session, site) or privacy.publish_notice(session, actor, site, demo_notice(site))
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
