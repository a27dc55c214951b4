"""The web console's page load, in headless Chromium against `kedge up`: from navigation to the
device list shown, and to the device page's first live value (User Timing marks the page sets),
each over fresh page loads with a signed-in session.

Baseline in the same run: the console's sign-in page (static, no data) to DOMContentLoaded, so
the figures read as "so many bare page loads".
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from bench.harness import percentile, summary
from harness.browser import chromium
from harness.support import ROOT, free_port, wait_for

PORTS = ("http", "mqtt", "api", "cloud", "join", "stream", "console")
MARK = "return (performance.getEntriesByName(arguments[0])[0] || {}).startTime || 0;"
LOADED = "return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;"


def timed(driver: WebDriver, url: str, mark: str) -> float:
    """ms from navigation start to the page's `mark` (a fresh load: from about:blank)."""
    driver.get("about:blank")
    driver.get(url)
    wait = WebDriverWait(driver, 60, poll_frequency=0.01)
    try:
        return float(wait.until(lambda d: d.execute_script(MARK, mark)))
    except TimeoutException:
        shown = driver.find_element(By.TAG_NAME, "body").text[-1000:]
        raise RuntimeError(f"{mark} not reached at {url}; the page shows:\n{shown}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kedge-bench-console-") as tmp:
        ports = {name: free_port() for name in PORTS}
        log = Path(tmp) / "up.log"
        with log.open("wb") as out:
            up = subprocess.Popen(
                [sys.executable, "-m", "kedge", "up", "--state-dir", f"{tmp}/state",
                 *[a for n in PORTS for a in (f"--{n}-port", str(ports[n]))]],
                stdout=out, stderr=out, cwd=ROOT,
            )  # fmt: skip
        try:
            pattern = re.compile(r"console: (\S+)  token \(admin[^:]*: (\S+)")
            shown = wait_for(lambda: pattern.search(log.read_text()), 120, "the console")
            measure(shown[1].rstrip("/"), shown[2], args.loads)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(60)


def measure(url: str, token: str, loads: int) -> None:
    with chromium() as driver:
        driver.get(url + "/")
        driver.execute_script("sessionStorage.setItem('kedge-console-token', arguments[0])", token)
        timed(driver, url + "/#/device/default/thermostat-1", "first-live-value")  # warm-up
        bare, listed, live = [], [], []
        for _ in range(loads):
            driver.execute_script("sessionStorage.removeItem('kedge-console-token')")
            driver.get("about:blank")
            driver.get(url + "/")
            bare.append(float(driver.execute_script(LOADED)))
            driver.execute_script("sessionStorage.setItem('kedge-console-token', arguments[0])",
                                  token)  # fmt: skip
            listed.append(timed(driver, url + "/#/devices", "devices-listed"))
            live.append(timed(driver, url + "/#/device/default/thermostat-1", "first-live-value"))
    base = percentile(bare, 50)
    print(f"console page loads in headless Chromium, {loads} each")
    print(f"  baseline: sign-in page (static) to DOMContentLoaded  {summary(bare)}")
    for name, samples in (("device list shown", listed), ("device page, first live value", live)):
        ratio = percentile(samples, 50) / base
        print(f"  {name:30} {summary(samples)}  ({ratio:.1f}x baseline p50)")


if __name__ == "__main__":
    main()
