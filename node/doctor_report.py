"""What `media-node doctor` reports: one `Check` per thing it looked at (status, what it
found, the fix), and the `Report` that is ok only when no *required* check failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OK, MISSING, WARN, SKIP = "ok", "missing", "warn", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | missing | warn | skip
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.status == MISSING and self.required


@dataclass
class Report:
    profile: str
    reason: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "profile": self.profile,
            "reason": self.reason,
            "checks": [asdict(c) for c in self.checks],
        }

    def render(self) -> str:
        marks = {OK: "ok  ", MISSING: "MISS", WARN: "warn", SKIP: "-   "}
        lines = [f"profile: {self.profile} ({self.reason})"]
        for c in self.checks:
            mark = marks[c.status] if c.required or c.status != MISSING else "warn"
            lines.append(f"[{mark}] {c.name}: {c.detail}")
            if c.fix and c.status in (MISSING, WARN):
                lines.append(f"       fix: {c.fix}")
        failed = [c.name for c in self.checks if c.failed]
        lines.append("all required checks passed" if not failed else f"missing: {', '.join(failed)}")
        return "\n".join(lines)


__all__ = ["MISSING", "OK", "SKIP", "WARN", "Check", "Report"]
