"""The mailing-list CSV: one line per client, and no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io

from callcenter.crm.segments import MailingRow, SegmentFilter, mailing_csv


def test_given_rows_then_the_csv_has_a_header_a_bom_and_neutralised_cells() -> None:
    text = mailing_csv(
        [
            MailingRow("Мария", "ООО «Ромашка»", "бухгалтер", "m@x.ru", ("+79161112233",)),
            MailingRow("=cmd|' /C calc'!A0", "", "", "", ("+74951234567", "+79160000000")),
        ]
    )

    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [
        ["name", "organization", "position", "email", "phones"],
        ["Мария", "ООО «Ромашка»", "бухгалтер", "m@x.ru", "'+79161112233"],
        ["'=cmd|' /C calc'!A0", "", "", "", "'+74951234567; +79160000000"],
    ]


def test_given_tag_names_in_a_filter_then_they_are_trimmed_and_deduplicated() -> None:
    segment = SegmentFilter(tags=["  VIP ", "VIP", "new   client", " "])

    assert segment.tags == ["VIP", "new client"]
