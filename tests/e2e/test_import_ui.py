"""The import page in a real browser: upload → guessed mapping → preview → run → report →
rejected rows → undo, against the real API, job queue and event stream.

The file is what a Russian office sends: CSV in Windows-1251 with `;`, Russian headers and
phone numbers written every which way. What the preview and the report must say is counted
from the rows the test writes, by the kind of row each one is.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import FilePayload, Page, expect

from callcenter.auth.models import Role
from callcenter.clients import service as clients
from callcenter.clients.schemas import ClientIn, PhoneIn
from callcenter.config import Settings
from tests.e2e.conftest import LiveServer, login_via_api

pytestmark = pytest.mark.browser

MAX_UPLOAD_BYTES = 64 * 1024
"""A small upload limit for this module, so an oversized file stays small too."""

HEADERS = ["ФИО", "Телефон", "Должность", "Комментарий"]
GUESSED = {"ФИО": "full_name", "Телефон": "phone", "Должность": "position", "Комментарий": "notes"}
"""What each header means, as any person reading the file would map it."""

KNOWN_NAME = "Мария Сидорова"
KNOWN_PHONE = "+7 916 111-22-33"
KNOWN_POSITION = "бухгалтер"


@dataclass(frozen=True)
class Row:
    cells: tuple[str, str, str, str]
    kind: str
    """What the row is: a new person, the same person again later in the file, a person
    already in the base, or a row whose phone is no phone at all."""


ROWS = [
    Row(("Иванов Пётр", "8 (916) 123-45-67", "менеджер", "VIP"), "new"),
    Row(("Петрова Анна Ивановна", "123-45-67", "директор", ""), "new"),
    Row(("Сергей Кузнецов", "+7 999 000-11-22", "", "перезвонить в пятницу"), "new"),
    Row((KNOWN_NAME, "8 916 111 22 33", "главный бухгалтер", ""), "in_base"),
    Row(("Иванов Пётр Сергеевич", "+7 916 1234567", "", ""), "repeat"),
    Row(("Козлов Андрей", "звонить после обеда", "инженер", ""), "garbage"),
    Row(("Смирнова Ольга", "8-495-765-43-21 доб. 12", "", ""), "new"),
]

DECISION_OF_KIND = {"new": "create", "repeat": "merge", "in_base": "update", "garbage": "reject"}


def expected_counts(rows: list[Row]) -> dict[str, int]:
    """Rows per decision the data implies."""
    counts = {decision: 0 for decision in ("create", "update", "merge", "unchanged", "reject")}
    for row in rows:
        counts[DECISION_OF_KIND[row.kind]] += 1
    counts["rows"] = len(rows)
    return counts


def cp1251_csv(headers: list[str], rows: list[Row]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(row.cells)
    return out.getvalue().encode("cp1251")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={"data_dir": tmp_path / "data", "import_max_upload_bytes": MAX_UPLOAD_BYTES}
    )


def seed_known_client(server: LiveServer) -> int:
    async def seed() -> int:
        async with server.ctx.sessionmaker() as session:
            client = await clients.create_client(
                session,
                server.ctx.phones,
                ClientIn(
                    name=KNOWN_NAME, position=KNOWN_POSITION, phones=[PhoneIn(raw=KNOWN_PHONE)]
                ),
            )
            await session.commit()
            return client.id

    return server.run(seed())


def all_clients(page: Page) -> list[dict[str, Any]]:
    response = page.request.get("/api/clients?per_page=100")
    assert response.ok, response.text()
    body: dict[str, Any] = response.json()
    items: list[dict[str, Any]] = body["items"]
    assert body["total"] == len(items)
    return items


def upload(page: Page, name: str, content: bytes, mime: str = "text/csv") -> None:
    payload: FilePayload = {"name": name, "mimeType": mime, "buffer": content}
    page.set_input_files("[data-testid=file-input]", files=[payload])
    page.click("[data-testid=upload-button]")


def test_given_a_messy_russian_csv_when_a_supervisor_imports_it_then_preview_run_report_and_undo(
    live_server: LiveServer, page: Page
) -> None:
    known_id = seed_known_client(live_server)
    live_server.create_user("olga", name="Ольга Супервизорова", role=Role.SUPERVISOR)
    login_via_api(page, "olga")
    expected = expected_counts(ROWS)
    lines = {
        kind: [i + 2 for i, r in enumerate(ROWS) if r.kind == kind] for kind in DECISION_OF_KIND
    }

    # The operator page leads a supervisor here.
    page.goto("/operator")
    page.click("[data-testid=imports-link]")
    expect(page).to_have_url(f"{live_server.url}/imports")
    expect(page.get_by_test_id("step-file")).to_be_visible()

    # 1 → 2: the guessed mapping is shown, one select per column of the file.
    upload(page, "клиенты.csv", cp1251_csv(HEADERS, ROWS))
    expect(page.get_by_test_id("step-mapping")).to_be_visible()
    expect(page.locator("#mapping-title")).to_be_focused()
    expect(page.get_by_test_id("mapping-file")).to_have_text("клиенты.csv")
    selects = page.get_by_test_id("mapping-select")
    expect(selects).to_have_count(len(HEADERS))
    for header, field in GUESSED.items():
        expect(page.locator(f"select[data-header='{header}']")).to_have_value(field)
    # Beside each column, its first values, to map by what the cells hold.
    name_samples = page.locator(
        "[data-testid=mapping-row][data-header='ФИО'] [data-testid=mapping-samples] li"
    )
    expect(name_samples).to_have_text([r.cells[0] for r in ROWS[:3]])
    expect(page.get_by_test_id("region")).to_have_value("RU")
    expect(page.get_by_test_id("area-code")).to_have_value("495")
    page.check("[data-testid=save-template]")
    page.fill("[data-testid=template-name]", "Выгрузка из 1С")
    page.click("[data-testid=mapping-submit]")

    # 3: the preview counts are what the rows imply; every row is listed with its decision.
    expect(page.get_by_test_id("step-preview")).to_be_visible()
    for decision, count in expected.items():
        expect(page.get_by_test_id(f"count-{decision}")).to_have_attribute("data-count", str(count))
    rows = page.get_by_test_id("preview-row")
    expect(rows).to_have_count(len(ROWS))
    for kind, decision in DECISION_OF_KIND.items():
        for line in lines[kind]:
            expect(
                page.locator(f"[data-testid=preview-row][data-line='{line}']")
            ).to_have_attribute("data-decision", decision)
    bad_line = lines["garbage"][0]
    bad_row = page.locator(f"[data-testid=preview-row][data-line='{bad_line}']")
    expect(bad_row).to_contain_text("Неверный номер телефона")
    expect(bad_row).to_contain_text("звонить после обеда")
    # The rejected row shows its cells: whose row it was, not only why.
    expect(bad_row.get_by_test_id("reject-cells")).to_contain_text("Козлов Андрей")
    repeat_row = page.locator(f"[data-testid=preview-row][data-line='{lines['repeat'][0]}']")
    expect(repeat_row).to_contain_text(f"Сольётся со строкой {lines['new'][0]}")
    known_row = page.locator(f"[data-testid=preview-row][data-line='{lines['in_base'][0]}']")
    expect(known_row).to_contain_text(f"Карточка № {known_id}")

    # Filter by decision: only the rejected rows.
    page.click("label[for=filter-reject]")
    expect(rows).to_have_count(expected["reject"])
    expect(rows.first).to_have_attribute("data-decision", "reject")
    page.click("label[for=filter-all]")
    expect(rows).to_have_count(len(ROWS))
    assert [c["id"] for c in all_clients(page)] == [known_id], "a preview writes nothing"

    # 4: run; the bar reaches 100 % (from events, or the poll behind them).
    page.click("[data-testid=run-button]")
    progress = page.get_by_test_id("run-progress")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(progress).to_have_attribute(
        "aria-valuetext", re.compile(r"^100 % — записано (\d+) из \1$")
    )

    # 5: the report: the same counts, written.
    expect(page.get_by_test_id("step-report")).to_be_visible()
    expect(page.locator("#report-title")).to_be_focused()
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "done")
    for decision, count in expected.items():
        expect(page.get_by_test_id(f"report-{decision}")).to_have_attribute(
            "data-count", str(count)
        )
    new_people = len(lines["new"])
    expect(page.get_by_test_id("report-clients_created")).to_have_attribute(
        "data-count", str(new_people)
    )
    expect(page.get_by_test_id("report-clients_updated")).to_have_attribute("data-count", "1")
    imported = all_clients(page)
    assert len(imported) == 1 + new_people
    known = next(c for c in imported if c["id"] == known_id)
    assert known["position"] == "главный бухгалтер"

    # The rejected rows download with their reason.
    with page.expect_download() as download_info:
        page.click("[data-testid=rejected-csv]")
    download = download_info.value
    assert download.suggested_filename.endswith("-rejected.csv")
    text = Path(download.path()).read_bytes().decode("utf-8-sig")
    records = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert records[0] == ["Строка", *HEADERS, "Причина", "Пояснение"]
    assert len(records) == 1 + expected["reject"]
    bad = ROWS[bad_line - 2].cells
    assert records[1][: 1 + len(HEADERS)] == [str(bad_line), *bad]
    assert records[1][1 + len(HEADERS)] == "Неверный номер телефона"

    # Undo, with a confirm step that can be declined first.
    page.click("[data-testid=undo-button]")
    expect(page.get_by_test_id("undo-confirm")).to_be_visible()
    expect(page.get_by_test_id("undo-no")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("undo-confirm")).to_be_hidden()
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "done")
    page.click("[data-testid=undo-button]")
    page.click("[data-testid=undo-yes]")
    status = page.get_by_test_id("import-status")
    expect(status).to_have_attribute("data-status", "undone")
    expect(status).to_have_text("Отменён")
    expect(page.get_by_test_id("undo-box")).to_be_hidden()

    # The base is as it was: no imported client, the known one back to its own values.
    remaining = all_clients(page)
    assert [c["id"] for c in remaining] == [known_id]
    assert remaining[0]["position"] == KNOWN_POSITION

    # A reload comes back to the same batch; English is one click away.
    page.reload()
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "undone")
    page.click("[data-testid=lang-en]")
    expect(status).to_have_text("Undone")
    templates = page.request.get("/api/import-templates").json()
    assert [t["name"] for t in templates] == ["Выгрузка из 1С"]
    assert {h: f for f, hs in templates[0]["mapping"].items() for h in hs} == GUESSED


def test_given_a_card_edited_after_the_import_then_undo_is_refused_with_the_reason(
    live_server: LiveServer, page: Page
) -> None:
    known_id = seed_known_client(live_server)
    live_server.create_user("olga", role=Role.SUPERVISOR)
    session = login_via_api(page, "olga")
    rows = [r for r in ROWS if r.kind in ("new", "in_base")]
    page.goto("/imports")
    upload(page, "клиенты.csv", cp1251_csv(HEADERS, rows))
    page.click("[data-testid=mapping-submit]")
    expect(page.get_by_test_id("count-update")).to_have_attribute("data-count", "1")
    page.click("[data-testid=run-button]")
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "done")

    # Someone corrects the card the import updated; undoing would throw that away.
    edited = page.request.patch(
        f"/api/clients/{known_id}",
        data={"position": "финансовый директор"},
        headers={"X-CSRF-Token": session["csrf_token"]},
    )
    assert edited.ok, edited.text()
    page.click("[data-testid=undo-button]")
    page.click("[data-testid=undo-yes]")
    error = page.get_by_test_id("report-error")
    expect(error).to_have_attribute("data-code", "undo_conflict")
    expect(error).to_contain_text("карточек, изменённых вручную: 1")
    expect(page.get_by_test_id("import-status")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("undo-button")).to_be_focused()
    assert len(all_clients(page)) == len(rows), "nothing was undone"


def two_sheet_workbook(title: str, headers: list[str], rows: list[list[str]]) -> bytes:
    """A workbook whose first sheet is a cover page and whose second holds the clients."""
    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "Сводка"
    cover.append([title])
    sheet = book.create_sheet("Клиенты")
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_given_a_workbook_of_two_sheets_and_a_saved_template_then_sheet_and_template_are_chosen(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("olga", role=Role.SUPERVISOR)
    session = login_via_api(page, "olga")
    template = {"full_name": ["Контакт"], "phone": ["Сотовый"], "notes": ["Город"]}
    saved = page.request.post(
        "/api/import-templates",
        data={"name": "Контакты по городам", "mapping": template},
        headers={"X-CSRF-Token": session["csrf_token"]},
    )
    assert saved.ok, saved.text()
    headers = ["Контакт", "Сотовый", "Город"]
    people = [
        ["Орлов Игорь", "8 903 111-22-33", "Тверь"],
        ["Белова Нина", "+7 (903) 222-33-44", "Клин"],
    ]
    page.goto("/imports")
    upload(
        page,
        "контакты.xlsx",
        two_sheet_workbook("Выгрузка за ноябрь", headers, people),
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )

    # The first sheet is a cover page: choose the second; its columns replace the cover's.
    expect(page.get_by_test_id("step-mapping")).to_be_visible()
    expect(page.get_by_test_id("sheet-select")).to_have_value("Сводка")
    page.select_option("[data-testid=sheet-select]", "Клиенты")
    expect(page.get_by_test_id("mapping-row")).to_have_count(len(headers))
    expect(page.locator("select[data-header='Сотовый']")).to_have_value("mobile")
    expect(page.locator("select[data-header='Город']")).to_have_value("")
    city_samples = page.locator(
        "[data-testid=mapping-row][data-header='Город'] [data-testid=mapping-samples] li"
    )
    expect(city_samples).to_have_text([p[2] for p in people])

    # Without a name column the server refuses the mapping, and says why in words.
    page.select_option("select[data-header='Контакт']", "")
    page.click("[data-testid=mapping-submit]")
    refused = page.get_by_test_id("mapping-error")
    expect(refused).to_have_attribute("data-code", "bad_mapping")
    expect(refused).to_have_text(
        "Выберите колонку с именем: ФИО контакта или название организации (или ИНН)."
    )

    # The saved template says otherwise: apply it, check what it set, and preview.
    page.select_option("[data-testid=template-select]", "Контакты по городам")
    page.click("[data-testid=template-apply]")
    for field, (header,) in template.items():
        expect(page.locator(f"select[data-header='{header}']")).to_have_value(field)
    page.click("[data-testid=mapping-submit]")
    expect(page.get_by_test_id("step-preview")).to_be_visible()
    expect(page.get_by_test_id("count-create")).to_have_attribute("data-count", str(len(people)))
    batch_id = int(page.evaluate("() => window.callcenter.state.batch.id"))
    batch = page.request.get(f"/api/imports/{batch_id}").json()
    assert batch["sheet"] == "Клиенты"
    assert batch["mapping"] == template


def test_given_an_operator_then_the_page_says_not_allowed_and_the_header_has_no_link(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("anna", role=Role.OPERATOR)
    login_via_api(page, "anna")
    page.goto("/operator")
    expect(page.get_by_test_id("user-name")).not_to_be_empty()
    expect(page.get_by_test_id("imports-link")).to_be_hidden()

    page.goto("/imports")
    expect(page.get_by_test_id("not-allowed")).to_be_visible()
    expect(page.get_by_test_id("not-allowed")).to_contain_text("Импорт — для супервизоров")
    expect(page.get_by_test_id("import-wizard")).to_be_hidden()
    refused = page.request.post(
        "/api/imports",
        multipart={"file": {"name": "x.csv", "mimeType": "text/csv", "buffer": b"a"}},
    )
    assert refused.status == 403


def test_given_a_garbage_or_oversized_file_then_the_upload_shows_a_translated_error(
    live_server: LiveServer, page: Page
) -> None:
    live_server.create_user("olga", role=Role.SUPERVISOR, locale="en")
    login_via_api(page, "olga")
    page.goto("/imports")
    error = page.get_by_test_id("upload-error")

    # Random bytes named .xlsx: not a workbook.
    upload(page, "clients.xlsx", bytes(range(256)) * 4, mime="application/octet-stream")
    expect(error).to_have_attribute("data-code", "extension_mismatch")
    expect(error).to_have_text("The file's extension does not match its content.")
    expect(page.get_by_test_id("step-file")).to_be_visible()

    # Bigger than the server's limit, which the page says up front: refused before sending.
    expect(page.get_by_test_id("file-limit")).to_have_text(
        re.compile(r"^Up to 64 KB and [\d,]+ rows\.$")
    )
    oversized = cp1251_csv(HEADERS, ROWS) * (MAX_UPLOAD_BYTES // 200 + 1)
    assert len(oversized) > MAX_UPLOAD_BYTES
    kilobytes = -(-len(oversized) // 1024)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    upload(page, "big.csv", oversized)
    expect(error).to_have_attribute("data-code", "too_large")
    expect(error).to_have_text(f"The file is {kilobytes} KB; at most 64 KB can be uploaded.")
    page.click("[data-testid=lang-ru]")
    expect(error).to_have_text(f"Файл весит {kilobytes} КБ, а загрузить можно не больше 64 КБ.")
    assert sent == [], "the page refuses it without sending it"
    assert page.request.get("/api/imports").json() == [], "a refused file is not kept"
