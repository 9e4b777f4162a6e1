"""The one Chromium set-up of the browser tests (the report's and JupyterLab's): Debian's chromium, as root
(--no-sandbox), no GPU, and no network beyond the loopback (this machine's closed network refuses the rest)."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
