"""Typed view of a site's settings, with the defaults every part of midbot reads the same way."""

from __future__ import annotations

from datetime import date, time

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.db.models import Site

__all__ = ["PAUSED_PROGRAMS", "PROGRAMS_YAML", "SiteConfig", "parse_hhmm", "site_config"]

# Keys of Site.settings the program loader writes: the program ids loaded paused (planned and sent for
# nothing until resumed), and the YAML text last loaded (shown for editing and audited before/after).
PAUSED_PROGRAMS = "paused_programs"
PROGRAMS_YAML = "programs_yaml"


def parse_hhmm(value: str) -> time:
    """Parse "HH:MM" (24 h) into a time; raises ValueError."""
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"not HH:MM: {value!r}")
    return time(int(hours), int(minutes))


class SiteConfig(BaseModel):
    """A site's outreach and queue settings (Site columns + the JSON ``settings`` column)."""

    model_config = ConfigDict(frozen=True)

    site_id: str
    name: str
    phone: str
    time_zone: str
    messaging_service_sid: str | None = None
    quiet_start: str = "09:00"
    quiet_end: str = "20:00"
    send_rate: float = 1.0
    offers_delivery: bool = True
    offers_pickup: bool = True
    business_hours: tuple[str, str] = ("09:00", "17:00")
    business_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    closed_days: tuple[int, ...] = ()  # weekdays (Monday = 0) on which no outreach goes out
    closed_dates: tuple[date, ...] = ()
    copay_threshold: float = 100.0
    fever_threshold_f: float = 100.4
    daily_cap: int = Field(1, ge=0)
    weekly_cap: int = Field(3, ge=0)
    sla_hours: dict[str, float] = Field(
        default_factory=lambda: {"urgent_clinical": 1.0, "refill": 24.0, "financial": 24.0, "general": 24.0}
    )
    oncall_webhook_url: str = ""
    after_hours_phone: str = ""  # settings JSON: the clinic's out-of-hours line for "call now" advice
    self_care: dict[str, dict[str, str]] = Field(default_factory=dict)
    paused_programs: tuple[str, ...] = ()  # settings JSON: program ids loaded paused (see scheduler.programs)

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @property
    def quiet_window(self) -> tuple[time, time]:
        """(start, end) of the sending window in local time: outreach only between these."""
        return parse_hhmm(self.quiet_start), parse_hhmm(self.quiet_end)


def site_config(site: Site) -> SiteConfig:
    """Merge a Site row's columns with its JSON settings into a SiteConfig."""
    extra = dict(site.settings or {})
    return SiteConfig(
        site_id=site.id,
        name=site.name,
        phone=site.phone,
        time_zone=site.time_zone,
        messaging_service_sid=site.messaging_service_sid,
        quiet_start=site.quiet_start or "09:00",
        quiet_end=site.quiet_end or "20:00",
        send_rate=site.send_rate or 1.0,
        **{k: v for k, v in extra.items() if k in SiteConfig.model_fields},
    )
