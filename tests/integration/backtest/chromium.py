"""Render a page in Debian's headless chromium: screenshot plus every console message it logged."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
_CONSOLE = re.compile(r":(?P<level>[A-Z]+):CONSOLE(?:\(\d+\)|:\d+)\] \"(?P<message>.*)\", source: ")

# Appended to a copy of the page: after load, count images that did not decode (a broken data URI
# logs nothing by itself) and report them as console errors, so the console is the one verdict.
IMAGE_PROBE = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((img) => !img.complete || img.naturalWidth === 0);
  broken.forEach((img) => console.error("broken image: " + img.alt));
  console.log("probe: " + images.length + " images, " + broken.length + " broken");
});
</script>
"""


@dataclass(frozen=True)
class Rendered:
    screenshot: Path
    console: list[tuple[str, str]]  # (level, message)

    @property
    def errors(self) -> list[str]:
        return [
            m for level, m in self.console if level in {"ERROR", "WARNING"} or not m.startswith("probe: ")
        ]


def render(page: Path, screenshot: Path, *, width: int = 1100, height: int = 4200) -> Rendered:
    """Load ``page`` (with the image probe) and screenshot it; raise if chromium fails."""
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(
        page.read_text(encoding="utf-8").replace("</body>", IMAGE_PROBE + "</body>"), encoding="utf-8"
    )
    profile = page.parent / ".chromium-profile"
    proc = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            f"--window-size={width},{height}",
            f"--screenshot={screenshot}",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0 or not screenshot.is_file():
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
    console = [(m["level"], m["message"]) for m in _CONSOLE.finditer(proc.stderr)]
    return Rendered(screenshot, console)
