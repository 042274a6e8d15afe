"""The command line parses what README promises."""

from __future__ import annotations

import pytest

from callcenter.cli import main


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["user", "add", "--help"],
        ["replay", "--help"],
        ["pbx-adapter", "--help"],
        ["serve", "--help"],
        ["demo", "--help"],
        ["migrate", "--help"],
        ["simulate-pbx", "--help"],
    ],
)
def test_given_documented_command_when_asked_for_help_then_it_answers(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(command)
    assert done.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_given_replay_of_missing_file_then_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/no/such/file.ami"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_given_adapter_without_ami_settings_then_it_says_what_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from callcenter.config import get_settings

    monkeypatch.delenv("CALLCENTER_AMI_HOST", raising=False)
    get_settings.cache_clear()
    assert main(["pbx-adapter"]) == 1
    assert "CALLCENTER_AMI_HOST" in capsys.readouterr().err
