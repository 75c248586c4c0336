"""Per-app state of the mobile API (config, keys, derived keys, code sender and deliverer, face engine), reached
through `mobile()`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import URLSafeSerializer

from gatehouse_core.keyring import ServerKeys
from mobile_api.code_senders import CodeDeliverer, make_sender
from mobile_api.config import MobileApiConfig
from server.services.accounts.app_sessions import TokenPolicy, access_key
from server.services.accounts.code_queue import queue_key
from server.services.accounts.login_codes import CodeSender, code_key
from server.services.face.enrollment import EnrollmentEngine


@dataclass(frozen=True)
class MobileState:
    """What views need besides the database session."""

    config: MobileApiConfig
    keys: ServerKeys
    access_key: bytes
    code_key: bytes
    queue_key: bytes
    policy: TokenPolicy
    sender: CodeSender | None
    # Sends the codes requests queue; its thread runs under `gatehouse mobile-api run` (`deliverer.start(app)`).
    deliverer: CodeDeliverer | None
    face: EnrollmentEngine
    share: URLSafeSerializer


def build_state(config: MobileApiConfig, keys: ServerKeys) -> MobileState:
    """Derive everything once at app creation (loads no face model: that happens on first use)."""
    tokens = config.tokens
    sender = make_sender(config.login_codes)
    codes, queue = code_key(keys.session_secret), queue_key(keys.session_secret)
    return MobileState(
        config=config,
        keys=keys,
        access_key=access_key(keys.session_secret),
        code_key=codes,
        queue_key=queue,
        policy=TokenPolicy(
            access_ttl=timedelta(minutes=tokens.access_minutes),
            refresh_ttl=timedelta(days=tokens.refresh_days),
            session_max_age=timedelta(days=tokens.session_max_days),
            max_sessions=tokens.max_devices,
        ),
        sender=sender,
        deliverer=CodeDeliverer(sender, queue, codes) if sender is not None else None,
        face=EnrollmentEngine(config.face),
        share=URLSafeSerializer(keys.session_secret, salt="gatehouse visitor pass share link v1"),
    )


def mobile() -> MobileState:
    """The running mobile API's state."""
    value: MobileState = current_app.extensions["gatehouse_mobile"]
    return value
