"""The audit trail in GraphQL: ``SecurityEvent``, its kinds and ``User.securityEvents``.

Rows become types by explicit conversion (:meth:`SecurityEvent.from_record`): the acting
admin's id, kept in the table, is not shown to the user.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from auth import errors
from auth.events import EventKind, EventPage, SecurityEventRecord, SecurityEvents, cursor_of
from graph.context import Context
from graph.errors import PublicError

SecurityEventKind = strawberry.enum(
    EventKind,
    name="SecurityEventKind",
    description="What happened to the account (one value per kind of security event).",
)


@strawberry.type(description="One entry of the account's security trail.")
class SecurityEvent:
    id: strawberry.ID
    kind: SecurityEventKind  # type: ignore[valid-type]
    occurred_at: datetime
    ip_address: str | None = strawberry.field(description="The client's IP address.")
    device: str | None = strawberry.field(
        description='The client, parsed from its user agent ("Firefox 120 on Ubuntu").'
    )
    session_id: strawberry.ID | None = strawberry.field(
        description="The session the event is about: the one opened, ended or acting."
    )
    current: bool = strawberry.field(description="Whether that session is the caller's own.")
    detail: str | None = strawberry.field(
        description="A label some kinds carry: the sign-in method (`password`, `signup`, "
        "`password+totp`, `password+recovery_code`), the sign-out scope (`current`, `others`, "
        "`all`), the failed step (`password`, `totp`, `recovery_code`), the admin action."
    )

    @classmethod
    def from_record(
        cls, record: SecurityEventRecord, *, current_session_id: str | None
    ) -> SecurityEvent:
        return cls(
            id=strawberry.ID(record.id),
            kind=EventKind(record.kind),
            occurred_at=record.occurred_at,
            ip_address=record.ip_address,
            device=record.device,
            session_id=strawberry.ID(record.session_id) if record.session_id else None,
            current=record.session_id is not None and record.session_id == current_session_id,
            detail=record.detail,
        )


@strawberry.type(description="A security event and its position in the list.")
class SecurityEventEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the events that follow.")
    node: SecurityEvent


@strawberry.type(description="A page of security events, newest first (a Relay connection).")
class SecurityEventConnection:
    edges: list[SecurityEventEdge]
    page_info: relay.PageInfo

    @classmethod
    def from_page(
        cls, page: EventPage, *, current_session_id: str, after: str | None
    ) -> SecurityEventConnection:
        edges = [
            SecurityEventEdge(
                cursor=cursor_of(e),
                node=SecurityEvent.from_record(e, current_session_id=current_session_id),
            )
            for e in page.events
        ]
        return cls(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next,
                # Forward pagination only: whether something precedes is not looked up.
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


def read_events(context: Context, user_id: str, first: int, after: str | None) -> EventPage:
    """One page of the user's trail, in a database session of its own (sibling fields
    run in other worker threads, and one ORM session cannot serve two)."""
    with context.state.database() as database:
        try:
            return context.state.service(SecurityEvents, database).page(
                user_id, first=first, after=after
            )
        except errors.ValidationFailed as exc:
            raise PublicError(exc.public_message, "BAD_USER_INPUT") from None
