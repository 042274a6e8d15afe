"""Several PBXs (sites) in the settings: which adapters run, and how each is configured."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from callcenter.cli import _parser
from callcenter.cli_pbx import choose_site
from callcenter.config import PbxSite, Settings
from pbx_adapter.lease import PbxLease

SITES_JSON = (
    '[{"name": "spb", "ami_host": "10.1.0.5", "ami_username": "crm", "ami_secret": "s3cret",'
    ' "area_code": "812"}, {"name": "ekb", "ami_host": "10.2.0.5", "region": "RU"}]'
)


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_given_only_the_single_pbx_settings_then_they_are_the_one_site() -> None:
    settings = _settings(ami_host="pbx.local", ami_username="crm", pbx_name="main")
    [site] = settings.pbx_sites()
    assert (site.name, site.ami_host, site.ami_username) == ("main", "pbx.local", "crm")
    assert (site.region, site.area_code) == ("RU", "495")


def test_given_no_pbx_at_all_then_the_default_site_runs_the_simulator() -> None:
    [site] = _settings().pbx_sites()
    assert (site.name, site.ami_host) == ("default", "")


def test_given_pbxs_json_in_the_environment_then_each_is_a_site_with_defaults_filled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLCENTER_PBXS", SITES_JSON)
    monkeypatch.setenv("CALLCENTER_DEFAULT_AREA_CODE", "343")
    sites = {site.name: site for site in _settings().pbx_sites()}
    assert set(sites) == {"spb", "ekb"}, "no AMI host of its own: the default PBX is not run"
    assert sites["spb"].ami_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(sites["spb"])
    assert (sites["spb"].region, sites["spb"].area_code) == ("RU", "812")
    assert sites["ekb"].area_code == "343"


def test_given_pbxs_and_a_default_ami_host_then_the_default_pbx_runs_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLCENTER_PBXS", SITES_JSON)
    settings = _settings(ami_host="msk.pbx", pbx_name="msk")
    assert [site.name for site in settings.pbx_sites()] == ["msk", "spb", "ekb"]


def test_given_two_pbxs_with_one_name_then_the_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="unique"):
        _settings(pbxs=[PbxSite(name="spb"), PbxSite(name="spb")])


def test_given_a_bad_pbx_name_then_the_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        _settings(pbxs=[{"name": "spb/../x"}])


def test_given_pbx_option_when_choosing_then_that_site_or_a_clear_error() -> None:
    settings = _settings(pbxs=[PbxSite(name="spb"), PbxSite(name="ekb")])
    assert choose_site(settings, "ekb").name == "ekb"
    with pytest.raises(ValueError, match="spb, ekb"):
        choose_site(settings, "nsk")
    with pytest.raises(ValueError, match="'default'"):
        choose_site(settings, None)
    assert choose_site(_settings(pbxs=[PbxSite(name="spb")]), None).name == "spb"


def test_given_pbx_adapter_command_then_it_takes_the_pbx_name() -> None:
    args = _parser().parse_args(["pbx-adapter", "--pbx", "spb", "--metrics-port", "0"])
    assert (args.pbx, args.metrics_port) == ("spb", 0)


def test_given_a_lease_longer_than_8s_then_it_is_refused() -> None:
    """A standby must take over within 10 s: TTL + 1 s of retry + connecting."""
    with pytest.raises(ValidationError):
        _settings(pbx_lease_ttl_s=9)
    with pytest.raises(ValueError, match="TTL"):
        PbxLease(Redis(), "spb", ttl_s=9)
    assert PbxLease(Redis(), "spb", ttl_s=8).retry_interval_s == 1.0
