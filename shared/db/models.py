"""SQLAlchemy 2 models. The schema is created only by Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    LargeBinary,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.clock import utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY, so BigInteger ids fall back to Integer there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Community(Base):
    __tablename__ = "communities"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_users_platform_external"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    community_code: Mapped[str | None] = mapped_column(ForeignKey("communities.code"))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    # Set when Telegram refused a message for good because the person blocked the bot; cleared
    # when they write again. Notifications to them are not attempted meanwhile.
    unreachable_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RequestCounter(Base):
    """Last number handed out per community and year (numbers are allocated atomically)."""

    __tablename__ = "request_counters"

    community_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_status_created", "status", "created_at"),
        Index("ix_requests_community_status", "community_code", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    category: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(24), default="received")
    team: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(16), default="telegram")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 0 none, 1 reminded, 2 escalated
    followup_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 0 asked, 1 reminded
    on_behalf_name: Mapped[str | None] = mapped_column(String(100))  # a neighbour without a chat account
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    solved: Mapped[bool | None] = mapped_column(Boolean)
    rating: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), onupdate=utcnow
    )


class RequestEvent(Base):
    """The request's timeline and audit trail: one row per change."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64), default="system")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class OutboxMessage(Base):
    """An outgoing notification. `key` is unique, so the same notification is queued once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    platform: Mapped[str] = mapped_column(String(16), default="telegram")
    chat_id: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any]] = mapped_column(JSON, default=list)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    batch: Mapped[str | None] = mapped_column(String(40), index=True)  # e.g. "announcement:7"
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_message_id: Mapped[str | None] = mapped_column(String(64))
    # When set, this row edits an earlier message (Telegram message id) instead of sending a new one.
    edit_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A postponed row (rate limit, 429) is due again then; the scheduler leaves it alone until.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RequestFollower(Base):
    """Residents who chose to follow an existing request instead of opening a duplicate."""

    __tablename__ = "request_followers"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class Referral(Base):
    """A request referred to a body outside the community, chased until it answers."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    body: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(100))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    chased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class Announcement(Base):
    """A message from staff to every resident of a community, sent through the outbox."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class Volunteer(Base):
    """A person registered to volunteer; only approved volunteers can claim tasks."""

    __tablename__ = "volunteers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    skills: Mapped[list[Any]] = mapped_column(JSON, default=list)
    days: Mapped[list[Any]] = mapped_column(JSON, default=list)
    parts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    phone: Mapped[str | None] = mapped_column(String(32))
    share_phone: Mapped[bool] = mapped_column(Boolean, default=False)
    named_in_recognition: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | declined
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class Task(Base):
    """A piece of volunteer work with a time window; claimed by exactly one volunteer."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_community_status", "community_code", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="staff")  # request | staff | fridge | books
    skill: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    details: Mapped[str | None] = mapped_column(Text)       # shown to the claimer only
    place: Mapped[str | None] = mapped_column(String(200))  # shown with the offer (rough)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    est_hours: Mapped[float] = mapped_column(Float, default=1.0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    claimer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    hours: Mapped[float | None] = mapped_column(Float)
    confirmed_hours: Mapped[float | None] = mapped_column(Float)
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    offer_round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    reminder_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class FridgeItem(Base):
    """Food given to a shared fridge: pledged for a drop-off slot, received, taken or removed."""

    __tablename__ = "fridge_items"
    __table_args__ = (
        Index("ix_fridge_items_fridge_status", "fridge_code", "status"),
        Index("ix_fridge_items_status_best_before", "status", "best_before"),
        UniqueConstraint("code", name="uq_fridge_items_code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(8))  # short code the donor shows at the fridge
    fridge_code: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code", name="fk_fridge_items_community"))
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_fridge_items_donor"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    best_before: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="pledged")
    slot_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    slot_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    refuse_reason: Mapped[str | None] = mapped_column(String(16))
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_fridge_items_handler"))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # taken, removed, refused …
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # in a "new food" alert
    expiry_announced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # "expires today"
    flagged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # past best-before
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class FridgeTake(Base):
    """One portion taken through the bot: once per person, item and local day (a double tap takes one)."""

    __tablename__ = "fridge_takes"
    __table_args__ = (Index("ix_fridge_takes_user_day", "user_id", "day"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("fridge_items.id", name="fk_fridge_takes_item"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_fridge_takes_user"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    fridge_code: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class FridgeSubscription(Base):
    """Someone who wants "new food" alerts for a fridge."""

    __tablename__ = "fridge_subscriptions"
    __table_args__ = (Index("ix_fridge_subscriptions_fridge", "fridge_code"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_fridge_subscriptions_user"), primary_key=True)
    fridge_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class FridgeShift(Base):
    """A planned check/clean/restock shift (one volunteer task) and its checklist."""

    __tablename__ = "fridge_shifts"
    __table_args__ = (UniqueConstraint("fridge_code", "starts_at", name="uq_fridge_shifts_fridge_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fridge_code: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code", name="fk_fridge_shifts_community"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", name="fk_fridge_shifts_task"), index=True)
    temperature: Mapped[float | None] = mapped_column(Float)
    cleaned: Mapped[bool | None] = mapped_column(Boolean)
    expired_removed: Mapped[bool | None] = mapped_column(Boolean)
    checked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_fridge_shifts_checker"))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class Book(Base):
    """A book listed to give (凤翮筑梦书屋). Kept at the book house or by its owner until handed over."""

    __tablename__ = "books"
    # No index on status: the hold sweep flips thousands of statuses at once, and with status unindexed
    # (and pages left 30% free on PostgreSQL, see migration 0007) those are HOT updates that touch no index.
    __table_args__ = (Index("ix_books_wish_stage", "wish_stage"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    house_code: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code", name="fk_books_community"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_books_owner"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str | None] = mapped_column(String(120))
    isbn: Mapped[str | None] = mapped_column(String(13), index=True)
    condition: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(String(8))   # house | owner
    photo_file_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="available")
    search_key: Mapped[str] = mapped_column(Text)       # normalised title + author (shared.domain.books.normalize)
    wish_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 1 = wish lists checked
    given_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class BookHold(Base):
    """A request for a book: held for one person at a time, the others queue in order."""

    __tablename__ = "book_holds"
    # Partial indexes: a hold that ends (handed, expired, cancelled) leaves all but the first two, so
    # expiring 100,000 holds writes two index entries each rather than five.
    __table_args__ = (UniqueConstraint("book_id", "requester_id", name="uq_book_holds_book_requester"),
                      Index("ix_book_holds_lapsing", "expires_at", postgresql_where=text("status = 'held'"),
                            sqlite_where=text("status = 'held'")),
                      Index("ix_book_holds_holder", "book_id", postgresql_where=text("status = 'held'"),
                            sqlite_where=text("status = 'held'")),
                      Index("ix_book_holds_queue", "book_id", "queued_at", "id", postgresql_where=text("status = 'queued'"),
                            sqlite_where=text("status = 'queued'")),
                      Index("ix_book_holds_requester_active", "requester_id",
                            postgresql_where=text("status IN ('queued', 'held')"),
                            sqlite_where=text("status IN ('queued', 'held')")))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", name="fk_book_holds_book"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_book_holds_requester"))
    status: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # bumped when asked for again
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handover_on: Mapped[date | None] = mapped_column(Date)
    handed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_book_holds_handed_by"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class BookPoint(Base):
    """The points ledger (以书换绿): every change is a row with a reason; balances are sums.

    (user, reason, ref) is unique, so a handover processed twice books its points once.
    """

    __tablename__ = "book_points"
    __table_args__ = (UniqueConstraint("user_id", "reason", "ref", name="uq_book_points_user_reason_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_book_points_user"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))   # given | taken | seedling | adjust
    ref: Mapped[str] = mapped_column(String(40))      # e.g. "book:42"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class BookWish(Base):
    """A saved search: its owner is told once about each newly listed book that matches."""

    __tablename__ = "book_wishes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_book_wishes_user"), index=True)
    house_code: Mapped[str] = mapped_column(String(32))
    query: Mapped[str] = mapped_column(String(120))
    search_key: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class StaffLoginCode(Base):
    """A one-time dashboard login code sent by the bot to a staff member's chat (only its HMAC is stored)."""

    __tablename__ = "staff_login_codes"
    __table_args__ = (Index("ix_staff_login_codes_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    challenge: Mapped[str] = mapped_column(String(64), unique=True)  # names this attempt in the login form
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_staff_login_codes_user"))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class StaffSession(Base):
    """A dashboard session: the cookie holds a random token, the table its SHA-256 and the CSRF token."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_staff_sessions_user"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class StaffSubmission(Base):
    """A dashboard form handled once: a second submit of the same form (double click, back+resend) changes nothing."""

    __tablename__ = "staff_submissions"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_staff_submissions_user"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class MediationCase(Base):
    """A `mediation` request handled as a case (毛大姐调解室): its level, lead mediator and outcome."""

    __tablename__ = "mediation_cases"
    __table_args__ = (Index("ix_mediation_cases_community_status", "community_code", "status"),
                      Index("ix_mediation_cases_status_followup", "status", "followup_due"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", name="fk_mediation_cases_request"), unique=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code", name="fk_mediation_cases_community"))
    number: Mapped[str] = mapped_column(String(32))   # the request's number, shown to everyone on the case
    status: Mapped[str] = mapped_column(String(16), default="open")
    level: Mapped[int] = mapped_column(Integer, default=0)   # index into the community's ladder
    lead_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_mediation_cases_lead"), index=True)
    opened_by: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_mediation_cases_opener"))
    followup_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    followup_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 1 asked, 2 reminded
    followup_asked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class MediationMediator(Base):
    """A mediator on a case (the lead included): staff of the community or a volunteer with the skill."""

    __tablename__ = "mediation_mediators"

    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", name="fk_mediation_mediators_case"),
                                         primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_mediation_mediators_user"), primary_key=True,
                                         index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class MediationParty(Base):
    """A side of the dispute. Only a name until the person consents; the invitation code is stored hashed."""

    __tablename__ = "mediation_parties"
    __table_args__ = (UniqueConstraint("case_id", "side", name="uq_mediation_parties_case_side"),
                      UniqueConstraint("case_id", "user_id", name="uq_mediation_parties_case_user"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", name="fk_mediation_parties_case"), index=True)
    side: Mapped[int] = mapped_column(Integer)            # 1 甲方, 2 乙方, …
    role: Mapped[str] = mapped_column(String(16))         # reporter | other
    name: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_mediation_parties_user"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="invited")
    invite_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_mediation_parties_creator"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class MediationStage(Base):
    """One stint of a case at one level, and how it ended (escalated, agreed, referred, closed)."""

    __tablename__ = "mediation_stages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", name="fk_mediation_stages_case"), index=True)
    community_code: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class MediationSession(Base):
    """A mediation meeting with time and place; reminded the day before, attendance recorded after."""

    __tablename__ = "mediation_sessions"
    __table_args__ = (Index("ix_mediation_sessions_status_start", "status", "starts_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", name="fk_mediation_sessions_case"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    place: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    reminder_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_mediation_sessions_creator"))
    held_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class MediationAttendance(Base):
    """Who came to a session (one row per party, set by a mediator; setting it again overwrites)."""

    __tablename__ = "mediation_attendance"

    session_id: Mapped[int] = mapped_column(ForeignKey("mediation_sessions.id", name="fk_mediation_attendance_session"),
                                            primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("mediation_parties.id", name="fk_mediation_attendance_party"),
                                          primary_key=True)
    present: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_mediation_attendance_recorder"))


class MediationNote(Base):
    """Confidential: a mediator's note, or a party's private message to the mediators. Mediators only."""

    __tablename__ = "mediation_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", name="fk_mediation_notes_case"), index=True)
    kind: Mapped[str] = mapped_column(String(16))         # note | party_message
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_mediation_notes_author"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("mediation_parties.id", name="fk_mediation_notes_party"))
    text: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class MediationAgreement(Base):
    """What each side will do, by when; accepted by every party, then followed up."""

    __tablename__ = "mediation_agreements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", name="fk_mediation_agreements_case"),
                                         index=True)
    community_code: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    held: Mapped[bool | None] = mapped_column(Boolean)    # the follow-up's verdict
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_mediation_agreements_proposer"))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class MediationAnswer(Base):
    """A party's answer on an agreement: accept it (`accept`) or say whether it holds (`followup`)."""

    __tablename__ = "mediation_answers"

    agreement_id: Mapped[int] = mapped_column(ForeignKey("mediation_agreements.id", name="fk_mediation_answers_agreement"),
                                              primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("mediation_parties.id", name="fk_mediation_answers_party"),
                                          primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    answer: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_mediation_answers_recorder"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibResidence(Base):
    """Which compound (小区/楼院) of their community a resident lives in, declared once for compound topics."""

    __tablename__ = "delib_residences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_delib_residences_user"), primary_key=True)
    community_code: Mapped[str] = mapped_column(String(16))
    compound: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibTopic(Base):
    """A deliberation topic (议题) for a compound or a whole community, through the four steps."""

    __tablename__ = "delib_topics"
    __table_args__ = (Index("ix_delib_topics_community_stage", "community_code", "stage"),
                      UniqueConstraint("request_id", name="uq_delib_topics_request"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code", name="fk_delib_topics_community"))
    compound: Mapped[str | None] = mapped_column(String(64))   # None: the whole community
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    photos: Mapped[list[Any]] = mapped_column(JSON, default=list)
    proposer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_delib_topics_proposer"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", name="fk_delib_topics_request"))
    stage: Mapped[str] = mapped_column(String(16), default="proposed")
    flagged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # enough supporters: staff told
    report: Mapped[str | None] = mapped_column(Text)    # the closing report (执行与监督)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now(),
                                                 onupdate=utcnow)


class DelibEvent(Base):
    """The topic's public timeline: one row per step taken."""

    __tablename__ = "delib_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("delib_topics.id", name="fk_delib_events_topic"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64), default="system")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibSupport(Base):
    """A resident supports a topic (附议): once per person and topic."""

    __tablename__ = "delib_supports"

    topic_id: Mapped[int] = mapped_column(ForeignKey("delib_topics.id", name="fk_delib_supports_topic"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_delib_supports_user"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibComment(Base):
    """A resident's opinion on a topic; staff may hide it with a reason."""

    __tablename__ = "delib_comments"
    __table_args__ = (UniqueConstraint("key", name="uq_delib_comments_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("delib_topics.id", name="fk_delib_comments_topic"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_delib_comments_user"), index=True)
    key: Mapped[str] = mapped_column(String(128))    # the message it came from: a redelivery stores it once
    text: Mapped[str] = mapped_column(Text)
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hidden_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_delib_comments_hidden_by"))
    hide_reason: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibMeeting(Base):
    """A meeting (议事会) with time and place; supporters are reminded the day before."""

    __tablename__ = "delib_meetings"
    __table_args__ = (Index("ix_delib_meetings_reminded_starts", "reminded_at", "starts_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("delib_topics.id", name="fk_delib_meetings_topic"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    place: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_delib_meetings_creator"))
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibVote(Base):
    """A vote (决议) on a topic: options, secret or open, a quorum, a closing time, then its result."""

    __tablename__ = "delib_votes"
    __table_args__ = (Index("ix_delib_votes_closed_closes", "closed_at", "closes_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("delib_topics.id", name="fk_delib_votes_topic"), index=True)
    options: Mapped[list[Any]] = mapped_column(JSON)
    compound: Mapped[str | None] = mapped_column(String(64))   # who may vote: this compound's residents, or None: the community
    secret: Mapped[bool] = mapped_column(Boolean, default=True)
    quorum: Mapped[int] = mapped_column(Integer)
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_delib_votes_creator"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibBallot(Base):
    """One person's vote: (vote, user) is unique, so a double tap or a race stores one ballot; it may change until close."""

    __tablename__ = "delib_ballots"
    __table_args__ = (UniqueConstraint("vote_id", "user_id", name="uq_delib_ballots_vote_user"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    vote_id: Mapped[int] = mapped_column(ForeignKey("delib_votes.id", name="fk_delib_ballots_vote"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_delib_ballots_user"), index=True)
    choice: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibAction(Base):
    """A tracked action carrying out a decision: owner, due date, progress; optionally a request or a volunteer task."""

    __tablename__ = "delib_actions"
    __table_args__ = (Index("ix_delib_actions_status_due", "status", "due_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("delib_topics.id", name="fk_delib_actions_topic"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    owner: Mapped[str] = mapped_column(String(60))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")   # open | done
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", name="fk_delib_actions_task"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", name="fk_delib_actions_request"))
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # number of progress updates
    overdue_alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_delib_actions_creator"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class DelibRating(Base):
    """A resident's rating (1–5) of how a closed topic turned out: one per person, changeable."""

    __tablename__ = "delib_ratings"

    topic_id: Mapped[int] = mapped_column(ForeignKey("delib_topics.id", name="fk_delib_ratings_topic"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_delib_ratings_user"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())

class Activity(Base):
    """An activity people enrol in (四点半课堂, 假期小课堂, 老年大学 courses, lectures, clubs).

    From config (`code` set, kept in step by the scheduler) or created by staff in chat.
    """

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_community_status", "community_code", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str | None] = mapped_column(String(32), unique=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code", name="fk_activities_community"))
    title: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    organiser_name: Mapped[str | None] = mapped_column(String(100))
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_activities_organiser"), index=True)
    audience: Mapped[str] = mapped_column(String(16))      # children | seniors | everyone
    age_min: Mapped[int | None] = mapped_column(Integer)
    age_max: Mapped[int | None] = mapped_column(Integer)
    place: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    enrol_opens_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enrol_closes_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    open_to_all: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")   # open | cancelled
    summary_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 1 = term summaries sent
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_activities_created_by"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class ActivitySession(Base):
    """One meeting of an activity (weekly recurrences are stored as their sessions)."""

    __tablename__ = "activity_sessions"
    __table_args__ = (UniqueConstraint("activity_id", "starts_at", name="uq_activity_sessions_activity_start"),
                      Index("ix_activity_sessions_status_start", "status", "starts_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", name="fk_activity_sessions_activity"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled | cancelled | held
    reminder_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    held_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    marked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_activity_sessions_marked_by"))


class ActivityChild(Base):
    """A child a guardian enrols: name, age, class, the people allowed to collect them, and consent."""

    __tablename__ = "activity_children"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    guardian_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_activity_children_guardian"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    age: Mapped[int] = mapped_column(Integer)
    school_class: Mapped[str | None] = mapped_column(String(40))
    pickup: Mapped[list[Any]] = mapped_column(JSON, default=list)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class ActivityEnrolment(Base):
    """A place (or a place in line) for one person or child in one activity; one row per (activity, user, who)."""

    __tablename__ = "activity_enrolments"
    __table_args__ = (UniqueConstraint("activity_id", "user_id", "who", name="uq_activity_enrolments_who"),
                      Index("ix_activity_enrolments_activity_status", "activity_id", "status"),
                      Index("ix_activity_enrolments_status_offer", "status", "offer_expires_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", name="fk_activity_enrolments_activity"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_activity_enrolments_user"), index=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("activity_children.id", name="fk_activity_enrolments_child"))
    who: Mapped[str] = mapped_column(String(24))          # self | c<child id>
    status: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Place in the activity's order of arrival, taken under the activity lock (the waiting list's order).
    queue_no: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")   # bumped at each new offer / re-enrolment
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class ActivityAttendance(Base):
    """The organiser's roll call for one session; for children, who collected them."""

    __tablename__ = "activity_attendance"

    session_id: Mapped[int] = mapped_column(ForeignKey("activity_sessions.id", name="fk_activity_attendance_session"),
                                            primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("activity_enrolments.id",
                                                         name="fk_activity_attendance_enrolment"), primary_key=True)
    present: Mapped[bool] = mapped_column(Boolean, default=False)
    picked_up_by: Mapped[str | None] = mapped_column(String(60))
    pickup_ok: Mapped[bool | None] = mapped_column(Boolean)
    marked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_activity_attendance_marked_by"))
    marked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ActivityTutorHours(Base):
    """A volunteer tutor's hours for one session, booked once into the volunteer ledger (a confirmed task)."""

    __tablename__ = "activity_tutor_hours"

    session_id: Mapped[int] = mapped_column(ForeignKey("activity_sessions.id", name="fk_activity_tutor_hours_session"),
                                            primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_activity_tutor_hours_user"), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", name="fk_activity_tutor_hours_task"))
    hours: Mapped[float] = mapped_column(Float)

class BookPosting(Base):
    """The search index of one book house: per search gram, the ids of the searchable books that contain it.

    A postings list (sorted little-endian int64 ids) per row, so a search reads one row per query gram
    and counts hits in memory instead of touching one index entry per (gram, book); same on both databases.
    """

    __tablename__ = "book_postings"

    house_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    gram: Mapped[str] = mapped_column(String(8), primary_key=True)
    ids: Mapped[bytes] = mapped_column(LargeBinary)


class BookShift(Base):
    """A planned book-house shift (one book_duty volunteer task): open hours, or a swap day."""

    __tablename__ = "book_shifts"
    __table_args__ = (UniqueConstraint("house_code", "starts_at", name="uq_book_shifts_house_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    house_code: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code", name="fk_book_shifts_community"))
    kind: Mapped[str] = mapped_column(String(8))   # open | swap
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", name="fk_book_shifts_task"), index=True)


class BookSeedling(Base):
    """A kind of seedling (以书换绿) the staff keep in stock, with its price in points."""

    __tablename__ = "book_seedlings"
    __table_args__ = (UniqueConstraint("house_code", "name", name="uq_book_seedlings_house_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    house_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(40))
    cost: Mapped[int] = mapped_column(Integer, default=1)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_book_seedlings_updated_by"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class BookSeedlingSwap(Base):
    """Points exchanged for seedlings on a swap day: one exchange per person per swap day (its ledger row's ref)."""

    __tablename__ = "book_seedling_swaps"
    __table_args__ = (UniqueConstraint("user_id", "house_code", "swap_day", name="uq_book_seedling_swaps_user_day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    house_code: Mapped[str] = mapped_column(String(32))
    swap_day: Mapped[date] = mapped_column(Date)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_book_seedling_swaps_user"), index=True)
    seedling_id: Mapped[int] = mapped_column(ForeignKey("book_seedlings.id", name="fk_book_seedling_swaps_seedling"))
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())

class IdentityLink(Base):
    """Another platform's account of the same person (a Matrix id linked to a Telegram user, or back).

    Messages from (platform, external_id) act as `user_id`; notifications keep going to the user's own account.
    """

    __tablename__ = "identity_links"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_identity_links_platform_external"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_identity_links_user"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())


class LinkCode(Base):
    """A one-time code (stored hashed) that links the account typing it to the user who asked for it."""

    __tablename__ = "link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_link_codes_user"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
