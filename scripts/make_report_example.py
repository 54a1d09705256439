"""Regenerate docs/report-example.png (the README's report screenshot) from the offline sample.

    python scripts/make_report_example.py            # runs `gap-replay download --sample` in a temp dir
    python scripts/make_report_example.py OUT        # uses an existing output directory
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from gap_replay.report import write_html_report

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp) / "sample-out"
        if len(sys.argv) == 1:
            subprocess.run([sys.executable, "-m", "gap_replay", "download", "--sample", "--output", str(out)],
                           check=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
        write_html_report(out, Path(tmp) / "report.html", main_chart_png=ROOT / "docs" / "report-example.png")
    print(ROOT / "docs" / "report-example.png")


if __name__ == "__main__":
    main()
