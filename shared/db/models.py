"""SQLAlchemy 2 models. The schema is created only by Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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
class Book(Base):
    """A book listed to give (凤翮筑梦书屋). Kept at the book house or by its owner until handed over."""

    __tablename__ = "books"
    __table_args__ = (Index("ix_books_house_status", "house_code", "status"),
                      Index("ix_books_wish_stage", "wish_stage"))

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


class BookGram(Base):
    """Search postings: one row per character bigram of a book's search key (same on SQLite and PostgreSQL)."""

    __tablename__ = "book_grams"
    __table_args__ = (Index("ix_book_grams_book", "book_id"),)

    gram: Mapped[str] = mapped_column(String(8), primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", name="fk_book_grams_book", ondelete="CASCADE"),
                                         primary_key=True)


class BookHold(Base):
    """A request for a book: held for one person at a time, the others queue in order."""

    __tablename__ = "book_holds"
    __table_args__ = (UniqueConstraint("book_id", "requester_id", name="uq_book_holds_book_requester"),
                      Index("ix_book_holds_status_expires", "status", "expires_at"),
                      Index("ix_book_holds_book_status", "book_id", "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", name="fk_book_holds_book"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", name="fk_book_holds_requester"), index=True)
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
