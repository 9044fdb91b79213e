"""Drives the admin web UI (docs/webui.md) in headless Chromium and checks one scenario.

Usage: python3 tests/webui/ui.py SCENARIO --url http://ADDR/webui/ --token T --shots DIR
       [--backends A,B] [--models M,N] [--backend NAME] [--model ID] [--prompt TEXT]
       [--min-requests N] [--deadline SECONDS] [--expect TEXT]

Scenarios: refuses, loads, backend_down, traffic, playground, reload, usable. Prints
`ok SCENARIO` when every check passed; otherwise exits 1 saying what was expected, what the
page showed and where the screenshot of that moment is. Run by the Rust tests in
tests/it/webui.rs.

Some scenarios hand over to the test in the middle: the driver prints `ready WHAT` on
stdout and waits for a line on stdin (the test changed the world: a backend went down, the
config file was rewritten), then goes on. Nothing here sleeps for a fixed time: every wait
is a condition polled until it holds or its timeout passes.

Browser: Debian's `chromium` and `chromedriver` (packages chromium, chromium-driver), the
Selenium 4 Python bindings (tests/sdk/requirements.txt). Only the page's stable hooks of
docs/webui.md are used.
"""
import argparse
import os
import re
import shutil
import signal
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from usable import VIEWS, Usable

NAV_BACKENDS = 'a[href="#backends"]'
WAIT = 10.0  # seconds for anything the page does on its own (fetches, renders)

# ---- page-side helpers of the `usable` scenario (run with execute_script) ------------

# The accessibility-tree roles that must have a name.
class Failure(Exception):
    pass


def find_binary(env, *names):
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        path = shutil.which(name) or (name if os.path.exists(name) else None)
        if path:
            return path
    raise SystemExit(
        f"none of {names} found (apt-get install chromium chromium-driver; scripts/test installs them), or set {env}"
    )


class UI(Usable):
    def __init__(self, args):
        self.args = args
        self.url = args.url
        self.scenario = args.scenario
        self.shots = args.shots
        os.makedirs(self.shots, exist_ok=True)
        opts = webdriver.ChromeOptions()
        opts.binary_location = find_binary("CHROMIUM", "chromium", "/usr/bin/chromium", "chromium-browser")
        for a in [
            "--headless=new",
            "--no-sandbox",  # root in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--password-store=basic",
        ]:
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=find_binary("CHROMEDRIVER", "chromedriver", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.driver.set_window_size(1280, 800)
        self.console = []  # every entry seen, for the failure report

    # ---- reporting -------------------------------------------------------------------

    def shot(self, name):
        path = os.path.join(self.shots, f"{self.scenario}-{name}.png")
        try:
            self.driver.save_screenshot(path)
        except WebDriverException as e:
            return f"(no screenshot: {e.msg})"
        return path

    def fail(self, expected, showed):
        raise Failure(f"expected: {expected}\n  the page showed: {showed}")

    def wait(self, what, cond, timeout=WAIT, showed=None):
        """Polls `cond` (returns a truthy value when done) until `timeout`; fails saying `what`
        and, from `showed()`, what the page had instead."""

        def poll(_):
            try:
                return cond()
            except (NoSuchElementException, StaleElementReferenceException):
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(poll)
        except TimeoutException:
            state = "?"
            try:
                state = showed() if showed else self.summary()
            except WebDriverException as e:
                state = f"(could not read the page: {e.msg})"
            self.fail(f"{what} (within {timeout:g} s)", state)

    def summary(self):
        return self.driver.execute_script(
            "const v=[...document.querySelectorAll('section[id^=view-]')].filter(s=>s.offsetParent!==null).map(s=>s.id);"
            "const t=(document.body&&document.body.innerText)||'';"
            "return `visible views ${JSON.stringify(v)}; #login shown: ${vis('#login')}, #app shown: ${vis('#app')}; text: ${JSON.stringify(t.slice(0,600))}`;"
            "function vis(s){const e=document.querySelector(s);return e?e.offsetParent!==null||getComputedStyle(e).display!=='none'&&!e.hidden:'absent'}"
        )

    # ---- page helpers ----------------------------------------------------------------

    def q(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def qs(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shown(self, css):
        els = self.qs(css)
        return bool(els) and els[0].is_displayed()

    def text(self, css):
        els = self.qs(css)
        return els[0].text.strip() if els else None

    def describe(self, css):
        els = self.qs(css)
        if not els:
            return f"no {css}"
        e = els[0]
        return f"{css} displayed={e.is_displayed()} text={e.text.strip()[:300]!r}"

    def console_check(self, allow_401=False):
        """Fails on SEVERE console entries since the last check. With `allow_401`, the
        network's own 401/403 lines for admin calls are allowed: a wrong token is refused,
        and Chromium logs every refused fetch as a console error. Nothing else is: a router
        whose admin API wants a credential writes so into the page, which then asks for it
        without first making a call bound to be refused."""
        entries = self.driver.get_log("browser")
        self.console += entries
        bad = []
        for e in entries:
            if e.get("level") != "SEVERE":
                continue
            msg = e.get("message", "")
            if (
                allow_401
                and e.get("source") == "network"
                and "/admin/" in msg
                and re.search(r"status of 40[13]\b", msg)
            ):
                continue
            bad.append(f"[{e.get('source')}] {msg}")
        if bad:
            self.fail("no SEVERE entries in the browser console", "\n    " + "\n    ".join(bad))

    def open(self):
        self.driver.get(self.url)
        self.wait(
            "the page settled on the sign-in form (#login shown) or the app (#app shown)",
            lambda: self.shown("#login") or self.shown("#app"),
        )

    def sign_in(self, token):
        self.open()
        self.wait("#login shown (the router has admin.auth bearer)", lambda: self.shown("#login"))
        if not self.shown("#login-token"):
            self.fail("#login-token shown for a bearer router", self.describe("#login-token"))
        box = self.q("#login-token")
        box.clear()
        box.send_keys(token)
        self.q("#login-submit").click()

    def signed_in(self):
        self.sign_in(self.args.token)
        self.wait(
            "#app shown and #login hidden after signing in with the right token",
            lambda: self.shown("#app") and not self.shown("#login"),
            showed=lambda: f"{self.describe('#app')}; {self.describe('#login')}; {self.describe('#login-error')}",
        )
        self.console_check()

    def go(self, view):
        link = self.q(f'a[href="#{view}"]')
        link.click()

        def only_this():
            for v in VIEWS:
                if self.shown(f"section#view-{v}") != (v == view):
                    return False
            return True

        self.wait(
            f"section#view-{view} shown and the other views hidden after clicking a[href=\"#{view}\"]",
            only_this,
            showed=lambda: "shown sections: "
            + str([v for v in VIEWS if self.shown(f"section#view-{v}")])
            + f"; absent: {[v for v in VIEWS if not self.qs(f'section#view-{v}')]}",
        )

    def row(self, table_css, attr, name):
        return f'{table_css} tr[data-{attr}="{name}"]'

    def backend_status(self, name):
        return self.text(f'#backends-table tbody tr[data-backend="{name}"] td[data-field=status]')

    def phone_check(self):
        """At 390 px wide the nav and the backends table still render."""
        self.go("backends")
        self.driver.set_window_size(390, 800)
        width = self.driver.execute_script("return window.innerWidth")
        self.wait(
            "the backends view at phone width: nav link a[href=\"#backends\"] and #backends-table rows shown",
            lambda: self.shown(NAV_BACKENDS)
            and self.shown("#backends-table")
            and any(r.is_displayed() for r in self.qs("#backends-table tbody tr[data-backend]")),
            showed=lambda: f"viewport {width}px; {self.describe(NAV_BACKENDS)}; {self.describe('#backends-table')}",
        )
        overflow = self.driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        path = self.shot("phone-390")
        note = f" (the page is {overflow}px wider than the viewport)" if overflow > 0 else ""
        print(f"phone width {width}px: {path}{note}")
        self.driver.set_window_size(1280, 800)

    def view_checks(self, models):
        """For each view: a condition that holds once it shows its data, and what it waits for."""
        ready = {
            "backends": lambda: True,
            "traffic": lambda: self.text("#traffic-requests") and self.shown("svg#chart-requests"),
            "usage": lambda: self.text("#usage-total-cost"),
            "models": lambda: all(self.qs(self.row("#models-table", "model", m)) for m in models),
            "config": lambda: self.text("pre#config-text"),
            "playground": lambda: all(
                self.driver.execute_script(
                    "return [...document.querySelectorAll('#pg-model option')].some(o=>o.value===arguments[0]||o.textContent.trim()===arguments[0])",
                    m,
                )
                for m in models
            ),
        }
        hooks = {
            "backends": "#backends-table",
            "traffic": "#traffic-requests, svg#chart-requests",
            "usage": "#usage-total-cost",
            "models": "#models-table rows " + ",".join(models),
            "config": "pre#config-text",
            "playground": "select#pg-model with options " + ",".join(models),
        }
        return ready, hooks

    def number(self, css):
        t = self.text(css)
        if not t:
            return None
        m = re.search(r"\d[\d,]*(?:\.\d+)?", t)
        return float(m.group(0).replace(",", "")) if m else None

    def handover(self, what):
        """Tells the test we are at `what`, and waits for it to say go."""
        print(f"ready {what}", flush=True)
        line = sys.stdin.readline()
        if not line:
            raise Failure(f"the test closed stdin instead of answering 'ready {what}'")

    # ---- scenarios -------------------------------------------------------------------

    def data_rows(self):
        return self.driver.execute_script(
            "return document.querySelectorAll('tr[data-backend],tr[data-model],tr[data-key],#pg-model option').length"
        )

    def refuses(self):
        a = self.args
        self.open()
        self.wait("#login shown without credentials", lambda: self.shown("#login"))
        if self.shown("#app"):
            self.fail("#app hidden without credentials", self.describe("#app"))
        if self.data_rows():
            self.fail("no data rows without credentials", f"{self.data_rows()} rows/options")
        leaked = [n for n in a.backends + a.models if n in self.driver.page_source]
        if leaked:
            self.fail("no backend or model name anywhere on the page without credentials", f"found {leaked}")
        print(f"signed out: {self.shot('signed-out')}")
        self.console_check()

        self.sign_in("wrong-" + a.token)
        self.wait(
            "#login-error shown (with a message) after a wrong token",
            lambda: self.shown("#login-error") and self.text("#login-error"),
            showed=lambda: self.describe("#login-error"),
        )
        if self.shown("#app"):
            self.fail("#app still hidden after a wrong token", self.describe("#app"))
        if self.data_rows():
            self.fail("no data rows after a wrong token", f"{self.data_rows()} rows/options")
        leaked = [n for n in a.backends + a.models if n in self.driver.page_source]
        if leaked:
            self.fail("no backend or model name on the page after a wrong token", f"found {leaked}")
        print(f"wrong token: {self.shot('wrong-token')}")
        self.console_check(allow_401=True)

        self.driver.set_window_size(390, 800)
        self.wait("#login shown at phone width", lambda: self.shown("#login") and self.shown("#login-submit"))
        print(f"phone width: {self.shot('phone-390')}")
        self.console_check()

    def loads(self):
        a = self.args
        self.signed_in()
        self.go("backends")
        for name in a.backends:
            self.wait(
                f'#backends-table tbody tr[data-backend="{name}"] with a status',
                lambda: self.backend_status(name),
                showed=lambda: "rows: "
                + str([r.get_attribute("data-backend") for r in self.qs("#backends-table tbody tr")]),
            )
        for field in ["status", "circuit", "latency", "in_flight", "models", "cache"]:
            if not self.qs(f'#backends-table tbody tr[data-backend="{a.backends[0]}"] td[data-field={field}]'):
                self.fail(f"td[data-field={field}] in the row of {a.backends[0]}", "no such cell")
        ready, hooks = self.view_checks(a.models)
        for view in VIEWS:
            self.go(view)
            self.wait(
                f"the {view} view filled in ({hooks[view]})",
                ready[view],
                showed=lambda: self.driver.find_element(By.CSS_SELECTOR, f"section#view-{view}").text[:600],
            )
            print(f"{view}: {self.shot(view)}")
            if view == "config" and a.token in self.text("pre#config-text"):
                self.fail("the admin token redacted in #config-text", "the token itself")
        self.console_check()
        self.phone_check()
        self.console_check()

    def backend_down(self):
        a = self.args
        self.signed_in()
        self.go("backends")
        self.wait(
            f"{a.backend} healthy in the backends table",
            lambda: re.search(r"(?<!un)healthy", (self.backend_status(a.backend) or "").lower()),
            showed=lambda: f"status {self.backend_status(a.backend)!r}",
        )
        print(f"healthy: {self.shot('healthy')}")
        self.handover("healthy")
        start = time.monotonic()
        # Waits longer than the deadline, to say how late it was.
        self.wait(
            f"{a.backend} unhealthy in the backends table",
            lambda: "unhealthy" in (self.backend_status(a.backend) or "").lower(),
            timeout=a.deadline + 15,
            showed=lambda: f"status {self.backend_status(a.backend)!r}",
        )
        took = time.monotonic() - start
        print(f"unhealthy after {took:.1f} s: {self.shot('unhealthy')}")
        if took > a.deadline:
            self.fail(
                f"{a.backend} shown unhealthy within {a.deadline:g} s (one health interval + the 2 s refresh)",
                f"unhealthy only after {took:.1f} s",
            )
        self.console_check()
        self.phone_check()
        self.console_check()

    def traffic(self):
        a = self.args
        self.signed_in()
        self.go("traffic")
        self.wait(
            f"#traffic-requests at least {a.min_requests}",
            lambda: (self.number("#traffic-requests") or 0) >= a.min_requests,
            showed=lambda: self.describe("#traffic-requests"),
        )
        for model in a.models:
            self.wait(
                f'#traffic-models tr[data-model="{model}"]',
                lambda: self.qs(self.row("#traffic-models", "model", model)),
                showed=lambda: "rows: "
                + str([r.get_attribute("data-model") for r in self.qs("#traffic-models tr[data-model]")]),
            )
        self.wait(
            f'#traffic-backends tr[data-backend="{a.backend}"]',
            lambda: self.qs(self.row("#traffic-backends", "backend", a.backend)),
            showed=lambda: "rows: "
            + str([r.get_attribute("data-backend") for r in self.qs("#traffic-backends tr[data-backend]")]),
        )
        for chart in ["svg#chart-requests", "#chart-errors", "#chart-latency"]:
            if not self.shown(chart):
                self.fail(f"{chart} shown", self.describe(chart))
            # Each chart's figure sits in the chart's box; none may say the burst is missing.
            box = self.driver.execute_script(
                "return arguments[0].closest('figure, .chart-card, section, div').innerText",
                self.q(chart),
            )
            if "No requests in this window" in box:
                self.fail(f"{chart} drawn with the burst's requests", repr(box[:200]))
        print(
            "traffic: requests %r, rps %r, error rate %r, p50 %r, p99 %r, ttft %r: %s"
            % tuple(
                [self.text(f"#traffic-{k}") for k in ["requests", "rps", "error-rate", "p50", "p99", "ttft"]]
                + [self.shot("traffic")]
            )
        )
        self.go("usage")
        for model in a.models:
            self.wait(
                f'#usage-models tr[data-model="{model}"]',
                lambda: self.qs(self.row("#usage-models", "model", model)),
                showed=lambda: self.driver.find_element(By.CSS_SELECTOR, "section#view-usage").text[:600],
            )
        self.wait("#usage-total-cost filled in", lambda: self.text("#usage-total-cost"))
        print(f"usage: total cost {self.text('#usage-total-cost')!r}: {self.shot('usage')}")
        self.console_check()
        self.phone_check()
        self.console_check()

    def playground(self):
        a = self.args
        self.signed_in()
        self.go("playground")
        model = a.model
        self.wait(
            f"select#pg-model offers {model}",
            lambda: self.driver.execute_script(
                "return [...document.querySelectorAll('#pg-model option')].some(o=>o.value===arguments[0]||o.textContent.trim()===arguments[0])",
                model,
            ),
            showed=lambda: "options: "
            + str([(o.get_attribute("value"), o.text) for o in self.qs("#pg-model option")]),
        )
        select = Select(self.q("select#pg-model"))
        try:
            select.select_by_value(model)
        except NoSuchElementException:
            select.select_by_visible_text(model)
        prompt = self.q("textarea#pg-prompt")
        prompt.clear()
        prompt.send_keys(a.prompt)
        # Every length #pg-output takes, recorded in the page as it changes.
        self.driver.execute_script(
            """
            const out = document.querySelector('#pg-output');
            window.__pgLengths = [out.textContent.length];
            new MutationObserver(() => {
                const n = out.textContent.length;
                if (window.__pgLengths[window.__pgLengths.length - 1] !== n) window.__pgLengths.push(n);
            }).observe(out, {childList: true, characterData: true, subtree: true});
            """
        )
        self.q("button#pg-send").click()
        norm = lambda s: " ".join((s or "").split())
        expected = norm(a.expect or a.prompt)
        self.wait(
            f"#pg-output ending with the whole answer {expected!r}",
            lambda: norm(self.q("#pg-output").get_attribute("textContent")) == expected,
            timeout=WAIT + 10,
            showed=lambda: self.describe("#pg-output"),
        )
        lengths = self.driver.execute_script("return window.__pgLengths")
        final = lengths[-1]
        partial = sorted({n for n in lengths if 0 < n < final})
        print(f"#pg-output lengths while streaming: {lengths}")
        if len(partial) < 2:
            self.fail(
                "#pg-output growing while the answer streams (at least two different partial lengths before the end)",
                f"lengths {lengths}",
            )
        self.wait(
            f"#pg-backend naming {a.backend}",
            lambda: a.backend in (self.text("#pg-backend") or ""),
            showed=lambda: self.describe("#pg-backend"),
        )
        print(f"playground: backend {self.text('#pg-backend')!r}, status {self.text('#pg-status')!r}: {self.shot('playground')}")
        self.console_check()
        self.phone_check()
        self.console_check()

    def reload(self):
        a = self.args
        self.signed_in()
        self.go("config")
        self.wait("pre#config-text filled in", lambda: self.text("pre#config-text"))
        if a.expect in self.q("pre#config-text").get_attribute("textContent"):
            self.fail(f"{a.expect!r} not yet in #config-text (the test adds it later)", "it is already there")
        print(f"before: {self.shot('before')}")
        self.handover("config")
        self.q("button#config-reload").click()
        self.wait(
            "#config-reload-result saying ok",
            lambda: re.search(r"\bok\b", (self.text("#config-reload-result") or "").lower()),
            showed=lambda: self.describe("#config-reload-result"),
        )
        result = self.text("#config-reload-result")
        if re.search(r"error|fail", result.lower()):
            self.fail("#config-reload-result saying ok", repr(result))
        self.wait(
            f"pre#config-text containing {a.expect!r} after the reload",
            lambda: a.expect in self.q("pre#config-text").get_attribute("textContent"),
            showed=lambda: self.describe("pre#config-text"),
        )
        print(
            f"after: result {result!r}, last reload {self.text('#config-last-reload')!r}, file {self.text('#config-file')!r}: {self.shot('after')}"
        )
        self.console_check()
        self.phone_check()
        self.console_check()

    # ---- usable: keyboard, focus, names, themes, widths, a page that holds still ------

def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["refuses", "loads", "backend_down", "traffic", "playground", "reload", "usable"])
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--backends", default="", type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--models", default="", type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--backend", default="")
    p.add_argument("--model", default="")
    p.add_argument("--prompt", default="")
    p.add_argument("--expect", default="")
    p.add_argument("--min-requests", type=float, default=1)
    p.add_argument("--deadline", type=float, default=5)
    p.add_argument("--overall", type=float, default=90, help="seconds the whole scenario may take")
    args = p.parse_args()

    os.environ.setdefault("SE_OFFLINE", "true")  # the browser and driver are given: no Selenium Manager downloads

    def too_long(*_):
        raise Failure(f"the scenario took more than {args.overall:g} s (--overall); stopped")

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(int(args.overall))
    ui = UI(args)
    try:
        getattr(ui, args.scenario)()
    except (Failure, WebDriverException, AssertionError) as e:
        msg = e.msg if isinstance(e, WebDriverException) else str(e)
        print(f"FAILED {args.scenario}: {msg}", flush=True)
        print(f"  screenshot: {ui.shot('FAILED')}", flush=True)
        try:
            ui.console += ui.driver.get_log("browser")
        except WebDriverException:
            pass
        if ui.console:
            print("  browser console:", flush=True)
            for e in ui.console:
                print(f"    {e.get('level')} [{e.get('source')}] {e.get('message')}", flush=True)
        ui.driver.quit()
        sys.exit(1)
    ui.driver.quit()
    print(f"ok {args.scenario}", flush=True)


if __name__ == "__main__":
    main()
