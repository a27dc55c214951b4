"""The web console from `kedge up`, in headless Chromium: sign-in, the four sample devices, a
live value changing, a desired value set and reached, a history chart drawn; viewers cannot set
values; the API refuses requests without a token and bad input. A screenshot of the device page
is kept in test-artifacts/."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from cloudcore.console.app import LIVE_MAX
from harness.apiserver import kubectl_binary
from harness.browser import chromium
from harness.support import ROOT, SAMPLES, free_port, wait_for

ARTIFACTS = ROOT / "test-artifacts"
BLUE_PIXELS = """const c = arguments[0];
const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
let blue = 0;
for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 200 && d[i] < 100) blue++;
return blue;"""
SAMPLE_DEVICES = {f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}"
                  for path in SAMPLES.glob("*.yaml") for d in yaml.safe_load_all(path.read_text())
                  if d and d["kind"] == "Device"}  # fmt: skip


@dataclass
class Console:
    url: str
    token: str
    state: Path

    def token_for(self, role: str, name: str) -> str:
        made = subprocess.run(
            [sys.executable, "-m", "kedge", "console", "--kubeconfig",
             str(self.state / "apiserver" / "kubeconfig"), "--state-dir",
             str(self.state / "console"), "token", "create", "--role", role, "--name", name],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        return made.stdout.strip()

    def api(self, method: str, path: str, token: str | None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    names = ("http", "mqtt", "api", "cloud", "join", "stream", "console")
    ports = {name: free_port() for name in names}
    log = tmp / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "kedge", "up", "--state-dir", str(tmp / "state"),
             *[arg for n in names for arg in (f"--{n}-port", str(ports[n]))]],
            stdout=out, stderr=out, cwd=ROOT,
        )  # fmt: skip
    try:
        pattern = re.compile(r"console: (\S+)  token \(admin[^:]*: (\S+)")
        shown = wait_for(lambda: pattern.search(log.read_text()), timeout=120, what="the console")
        yield Console(shown[1].rstrip("/"), shown[2], tmp / "state")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
    assert up.returncode == 0, log.read_text()[-3000:]


def sign_in(driver: WebDriver, console: Console, token: str) -> None:
    driver.get(console.url + "/")
    field = until(driver, 20, lambda d: d.find_element(By.ID, "token"))
    until(driver, 20, lambda d: field.is_displayed())
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()


def listed(driver: WebDriver) -> set[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#devices tr[data-device]")
    return {str(row.get_attribute("data-device")) for row in rows}


def until(driver: WebDriver, timeout: float, check: Callable[[WebDriver], Any]) -> Any:
    """WebDriverWait, failing with what the page showed (the reason is usually on it)."""
    try:
        return WebDriverWait(driver, timeout).until(check)
    except TimeoutException:
        shown = driver.find_element(By.TAG_NAME, "body").text[-2000:]
        raise AssertionError(f"not seen within {timeout} s; the page shows:\n{shown}") from None


def cell(driver: WebDriver, selector: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def test_console_when_admin_signs_in_shows_live_devices_and_sets_desired(console: Console) -> None:
    with chromium() as driver:
        sign_in(driver, console, "not-a-token")
        until(driver, 20, lambda d: "not accepted" in cell(d, "#login-error"))
        sign_in(driver, console, console.token)
        until(driver, 60, lambda d: listed(d) >= SAMPLE_DEVICES)
        assert "kedge-up (admin)" in cell(driver, "#who")

        driver.get(console.url + "/#/device/default/thermostat-1")
        until(driver, 30, lambda d: cell(d, "#live") == "live")
        before = until(driver, 30, 
            lambda d: cell(d, '[data-value="temperature"]').replace("—", ""))  # fmt: skip
        wanted = "30" if float(before) < 27 else "18"
        field = driver.find_element(By.CSS_SELECTOR, '[data-set="setpoint"]')
        field.send_keys(wanted)
        driver.find_element(By.CSS_SELECTOR, '[data-property="setpoint"] button').click()
        # pushed to the page, no reload: the desired value, then the device showing it
        until(driver, 60, lambda d: cell(d, '[data-desired="setpoint"]') == wanted)
        until(driver, 60, lambda d: cell(d, '[data-outcome="setpoint"]') == "reached")
        until(driver, 60,   # the thermostat heads for the new setpoint
            lambda d: cell(d, '[data-value="temperature"]') not in (before, ""))  # fmt: skip

        driver.find_element(By.CSS_SELECTOR, '[data-range="15 min"]').click()
        chart = driver.find_element(By.ID, "history-chart")
        until(driver, 30, lambda d: int(chart.get_attribute("data-points") or 0) >= 2)
        drawn_points = int(chart.get_attribute("data-points") or 0)
        until(driver, 60, lambda d: int(chart.get_attribute("data-points") or 0) > drawn_points)
        drawn = driver.execute_script(BLUE_PIXELS, chart)  # the line, not only the frame
        assert drawn > 50
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "console-device.png"))


def test_console_when_viewer_signs_in_cannot_set_desired(console: Console) -> None:
    viewer = console.token_for("viewer", "tester")
    with chromium() as driver:
        sign_in(driver, console, viewer)
        until(driver, 30, lambda d: "tester (viewer)" in cell(d, "#who"))
        driver.get(console.url + "/#/device/default/thermostat-1")
        until(driver, 30, lambda d: cell(d, '[data-value="setpoint"]') != "")
        assert driver.find_elements(By.CSS_SELECTOR, "[data-set]") == []
    refused = console.api("PUT", "/api/devices/default/thermostat-1/desired/setpoint", viewer,
                          json={"value": "22"})  # fmt: skip
    assert refused.status_code == 403 and "viewer" in refused.json()["error"]
    assert console.api("GET", "/api/devices", viewer).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/devices/default/Not_A_Name", None, 400),
        ("GET", "/api/devices/default/missing", None, 404),
        ("GET", "/api/devices/default/thermostat-1/history?property=", None, 400),
        ("GET", "/api/devices/default/thermostat-1/history?property=temperature&step=x", None, 400),
        ("PUT", "/api/devices/default/thermostat-1/desired/setpoint", b"{not json", 400),
        ("PUT", "/api/devices/default/thermostat-1/desired/setpoint", b'{"value": 5}', 400),
        ("PUT", "/api/devices/default/thermostat-1/desired/setpoint", b"[]", 400),
        ("PUT", "/api/devices/default/thermostat-1/desired/temperature", b'{"value": "5"}', 409),
        ("PUT", "/api/devices/default/thermostat-1/desired/nothing", b'{"value": "5"}', 404),
        ("PUT", "/api/devices/default/thermostat-1/desired/setpoint", b"x" * 70_000, 413),
    ],
)
def test_console_api_when_input_is_bad_says_why(
    console: Console, method: str, path: str, body: bytes | None, status: int
) -> None:
    answer = console.api(method, path, console.token, content=body)
    assert answer.status_code == status, answer.text
    if status != 413:
        assert answer.json()["error"]


@pytest.mark.parametrize("token", [None, "", "kc_forged", "Bearer"])
def test_console_api_when_token_missing_or_wrong_refuses(
    console: Console, token: str | None
) -> None:
    paths = ("/api/whoami", "/api/devices", "/api/nodes", "/api/devices/default/thermostat-1/live")
    for path in paths:
        answer = console.api("GET", path, token)
        assert answer.status_code == 401 and "Bearer" in answer.headers["WWW-Authenticate"]
    page = httpx.get(console.url + "/", timeout=10)  # the page itself holds no data
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


QUIET_DEVICE = """apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: quiet-1, namespace: default}
spec:
  deviceModelRef: {name: modbus-thermostat}
  nodeName: no-such-node
  protocol: {protocolName: modbus, configData: {ip: 127.0.0.1, port: 1, slaveID: 1}}
"""


def test_console_live_streams_when_pages_close_release_their_watches(console: Console) -> None:
    """More pages of a device that never changes (its node does not exist) opened and closed
    than the console allows live streams at once: each closed stream ends at once, giving its
    watches back, so the next one is served, not refused with 429."""
    kubeconfig = str(console.state / "apiserver" / "kubeconfig")
    subprocess.run([kubectl_binary(), "--kubeconfig", kubeconfig, "apply", "-f", "-"],
                   input=QUIET_DEVICE, text=True, check=True, capture_output=True)  # fmt: skip
    path = "/api/devices/default/quiet-1/live"
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {console.token}"}) as client:
        wait_for(lambda: client.get(console.url + "/api/devices/default/quiet-1").json()[
            "conditions"], timeout=30, what="the device's conditions settled")  # fmt: skip
        for _ in range(LIVE_MAX + 6):
            with client.stream("GET", console.url + path) as stream:
                assert stream.status_code == 200
                assert '"name":"quiet-1"' in next(stream.iter_lines())
        assert client.get(console.url + "/api/devices").status_code == 200
