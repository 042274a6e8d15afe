"""Demo data for `make demo`: users with phones on the simulator, organisations and clients."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import func, select

import callcenter.auth.service as auth
from callcenter.auth.models import Role, User
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, OrganizationIn, PhoneIn
from callcenter.config import Settings
from callcenter.context import build_context
from callcenter.tasks.models import Task

DEMO_USERS = [
    ("operator1", "Анна Смирнова", Role.OPERATOR, "101"),
    ("operator2", "Игорь Петров", Role.OPERATOR, "102"),
    ("operator3", "Ольга Кузнецова", Role.OPERATOR, "103"),
    ("sales1", "Дмитрий Волков", Role.OPERATOR, "104"),
    ("supervisor", "Елена Морозова", Role.SUPERVISOR, ""),
    ("admin", "Администратор", Role.ADMIN, ""),
]

DEMO_ORGANIZATIONS = [
    (
        "ООО «Ромашка»",
        "7701234567",
        "+7 495 123-45-67",
        [
            ("Мария Сидорова", "бухгалтер", "8 916 111-22-33"),
            ("Павел Орлов", "директор", "+7 (903) 555-12-12"),
        ],
    ),
    (
        "АО «СеверСталь-Сервис»",
        "7812345670",
        "8 (812) 600-70-80",
        [("Наталья Щукина-Львова", "закупщик", "79920049642")],
    ),
]

DEMO_PEOPLE = [
    ("Сергей Иванов", "9161234567"),
    ("John Smith", "+44 20 7946 0958"),
    ("Алексей Николаев", "142-58-74"),
]

DEMO_CALLER_NUMBERS = [
    "89161112233",
    "+79035551212",
    "79920049642",
    "+74951234567",
    "9161234567",
    "+442079460958",
    "1425874",
]
"""Numbers the demo simulator calls from, written the ways carriers present them."""


LoginRow = tuple[str, str, str, str]


async def seed_demo(settings: Settings) -> list[LoginRow] | None:
    """Create demo users and clients; (login, password, role, phone) rows, None if seeded."""
    ctx = build_context(settings)
    try:
        async with ctx.sessionmaker() as session:
            if await session.scalar(select(func.count()).select_from(User)):
                return None
            rows = []
            for login, name, role, extension in DEMO_USERS:
                password = secrets.token_urlsafe(9)
                await auth.create_user(
                    session,
                    login=login,
                    name=name,
                    password=password,
                    role=role,
                    extensions=[extension] if extension else [],
                    queues=["support"] if role is Role.OPERATOR else [],
                    locale="ru",
                )
                rows.append((login, password, role.value, extension or "-"))
            for org_name, inn, org_phone, contacts in DEMO_ORGANIZATIONS:
                org = await clients.create_organization(
                    session,
                    ctx.phones,
                    OrganizationIn(name=org_name, inn=inn, phones=[PhoneIn(raw=org_phone)]),
                )
                for person, position, phone in contacts:
                    client = await clients.create_client(
                        session,
                        ctx.phones,
                        ClientIn(
                            name=person,
                            organization_id=org.id,
                            position=position,
                            phones=[PhoneIn(raw=phone)],
                        ),
                    )
                    session.add(Task(title=f"Перезвонить: {person}", client_id=client.id))
            for person, phone in DEMO_PEOPLE:
                await clients.create_client(
                    session, ctx.phones, ClientIn(name=person, phones=[PhoneIn(raw=phone)])
                )
            await session.commit()
    finally:
        await ctx.close()
    return rows


def save_logins(path: Path, rows: list[LoginRow]) -> None:
    """Keep the generated demo passwords where only this user can read them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n")
    path.chmod(0o600)


def read_logins(path: Path) -> list[LoginRow]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            rows.append((parts[0], parts[1], parts[2], parts[3]))
    return rows
