"""Where this deployment's configuration lives, chosen when Definitions are built.

``SILOBREAKER_HOME`` (data home, default ``./var``), ``SILOBREAKER_SOURCES`` (sources.yaml),
``SILOBREAKER_POLICY`` (policy.yaml), ``SILOBREAKER_RULES`` (rules.yaml, the quality rules),
``SILOBREAKER_LINKING`` (linking.yaml, how records are linked into persons),
``SILOBREAKER_POPULATIONS`` (populations.yaml, the key populations), ``SILOBREAKER_RISKS`` (risks.yaml,
the risk early-warning rules) and ``SILOBREAKER_AREAS`` (the district's area register, a CSV of
streets, communities, grids and their buildings).
Without them, the built-in demo district's declarations are used, so ``dagster dev`` works on a
fresh checkout after ``silobreaker demo``; the demo's area register is the one ``silobreaker demo``
wrote under the data home (none: areas come from what departments state only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.config import suggest
from core.errors import ConfigError
from core.home import DataHome

__all__ = ["DEMO_LINKING", "DEMO_POLICY", "DEMO_POPULATIONS", "DEMO_RISKS", "DEMO_RULES", "DEMO_SOURCES", "PERSONS",
           "SETTINGS_ENV", "Settings"]

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
DEMO_SOURCES = DEMO_DIR / "sources.yaml"
DEMO_POLICY = DEMO_DIR / "policy.yaml"
DEMO_RULES = DEMO_DIR / "rules.yaml"
DEMO_LINKING = DEMO_DIR / "linking.yaml"
DEMO_POPULATIONS = DEMO_DIR / "populations.yaml"
DEMO_RISKS = DEMO_DIR / "risks.yaml"

SETTINGS_ENV: dict[str, str] = {
    "sources_file": "SILOBREAKER_SOURCES",
    "policy_file": "SILOBREAKER_POLICY",
    "rules_file": "SILOBREAKER_RULES",
    "linking_file": "SILOBREAKER_LINKING",
    "populations_file": "SILOBREAKER_POPULATIONS",
    "risks_file": "SILOBREAKER_RISKS",
    "areas_file": "SILOBREAKER_AREAS",
}
"""The environment variable naming each configuration file."""

PERSONS = "persons"
"""The name ``--accept-drop`` takes to confirm a drop in the persons resolved (rather than a source's rows)."""


@dataclass(frozen=True)
class Settings:
    """The data home and the configuration files of one deployment, and the drops a person confirmed.

    ``home`` may be given as a path; it is held as a :class:`~core.home.DataHome`. ``accept_drop``
    names the sources (or ``persons``) whose drop against the last publication ``accepted_by``
    confirmed for this run (``silobreaker run --accept-drop``). ``areas_file`` is the area register;
    unset, the demo's under the data home if ``silobreaker demo`` wrote one (:attr:`area_register_file`).
    """

    home: DataHome
    sources_file: Path
    policy_file: Path
    rules_file: Path = DEMO_RULES
    linking_file: Path = DEMO_LINKING
    accept_drop: tuple[str, ...] = ()
    accepted_by: str = ""
    populations_file: Path = DEMO_POPULATIONS
    areas_file: Path | None = None
    risks_file: Path = DEMO_RISKS

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", DataHome.at(self.home))
        for name in ("sources_file", "policy_file", "rules_file", "linking_file", "populations_file", "risks_file"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if self.areas_file is not None:
            object.__setattr__(self, "areas_file", Path(self.areas_file))
        object.__setattr__(self, "accept_drop", tuple(self.accept_drop))

    @property
    def area_register_file(self) -> Path | None:
        """The area register: ``areas_file``, else the demo's under the data home if there is one, else None."""
        if self.areas_file is not None:
            return self.areas_file
        demo = self.home.demo_area_register
        return demo if demo.exists() else None

    def accepted_drops(self, sources: list[str]) -> dict[str, str]:
        """Source (or ``persons``) -> who accepted its drop, for the names in ``accept_drop``.

        Raises:
            ConfigError: a name is neither a declared source nor ``persons``.
        """
        known = [*sources, PERSONS]
        for name in self.accept_drop:
            if name not in known:
                raise ConfigError(f"--accept-drop {name}: no source of that name{suggest(name, known)}; "
                                  f"name one of: {', '.join(known)}")
        return dict.fromkeys(self.accept_drop, self.accepted_by or "an unnamed operator")

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Read the environment variables (at call time), falling back to the demo; ``home`` (a command's
        ``--home``) in place of ``$SILOBREAKER_HOME`` or ``./var``, which is then never created."""
        demo = {"sources_file": DEMO_SOURCES, "policy_file": DEMO_POLICY, "rules_file": DEMO_RULES,
                "linking_file": DEMO_LINKING, "populations_file": DEMO_POPULATIONS, "risks_file": DEMO_RISKS, "areas_file": None}
        return cls(home=DataHome.resolve(home), **{
            name: (Path(os.environ[env]).resolve() if os.environ.get(env)
                   else demo[name].resolve() if demo[name] is not None else None)
            for name, env in SETTINGS_ENV.items()})
