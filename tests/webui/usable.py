"""The `usable` scenario of ui.py: keyboard navigation, accessible names, contrast in
both themes, no horizontal overflow and no layout shift while live data updates."""

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

VIEWS = ["backends", "traffic", "usage", "models", "config", "playground"]

NAMED_ROLES = {
    "button", "textbox", "searchbox", "combobox", "listbox", "checkbox", "radio", "switch", "slider",
    "spinbutton", "link", "image", "img", "table", "region", "navigation", "log",
}

# Colours as the browser computes them, composited backgrounds, WCAG contrast, and a short
# description of an element for failure messages.
COLOR_JS = r"""
function rgba(c) {
  let m = /^rgba?\(([^)]*)\)/.exec(c || '');
  if (m) {
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  m = /^color\(srgb ([^)]*)\)/.exec(c || '');
  if (m) {
    const p = m[1].split(/[\s\/]+/).filter(Boolean).map(parseFloat);
    return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
  }
  return null;
}
function over(top, under) {
  const a = top[3] + under[3] * (1 - top[3]);
  if (!a) return [0, 0, 0, 0];
  return [0, 1, 2].map((i) => (top[i] * top[3] + under[i] * under[3] * (1 - top[3])) / a).concat([a]);
}
// The opaque colour behind `el`: its own background and its ancestors', composited.
function backdrop(el) {
  const layers = [];
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const c = rgba(getComputedStyle(n).backgroundColor);
    if (c && c[3] > 0) {
      layers.push(c);
      if (c[3] >= 1) break;
    }
  }
  let c = [255, 255, 255, 1];
  for (const l of layers.reverse()) c = over(l, c);
  return c;
}
function lum(c) {
  const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
function contrast(a, b) {
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
const css = (c) => `rgb(${c.slice(0, 3).map(Math.round).join(',')})`;
function describe(e) {
  if (!e || e.nodeType !== 1) return String(e && e.nodeName);
  let s = e.tagName.toLowerCase();
  if (e.id) s += '#' + e.id;
  const h = e.getAttribute('href');
  if (h) s += `[href="${h}"]`;
  if (typeof e.className === 'string' && e.className.trim()) s += '.' + e.className.trim().split(/\s+/).join('.');
  if (!e.id) {
    const p = e.closest('[id]');
    if (p) s += ` in #${p.id}`;
  }
  return s;
}
"""

# The focused element and whether a focus indicator is drawn around it (an outline or a box
# shadow), with the outline's contrast against what is behind it.
FOCUS_JS = COLOR_JS + r"""
const e = document.activeElement;
if (!e || e === document.body || e === document.documentElement) return {what: 'the document body', indicator: false, style: ''};
const s = getComputedStyle(e);
const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
const shadow = !!s.boxShadow && s.boxShadow !== 'none';
const color = rgba(s.outlineColor);
const ratio = outline && color ? contrast(over(color, backdrop(e.parentElement)), backdrop(e.parentElement)) : null;
return {
  what: describe(e), href: e.getAttribute('href'), id: e.id, view: (e.closest('section[id^=view-]') || {}).id || null,
  indicator: outline || shadow, ratio,
  style: `outline: ${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}; box-shadow: ${s.boxShadow}; :focus-visible ${e.matches(':focus-visible')}`,
};
"""

# Every form control in the page (shown or not) with no accessible name from aria-label,
# aria-labelledby, a <label>, its text or its title; every <svg> without a <title> or label.
NAMES_JS = COLOR_JS + r"""
const txt = (e) => (e ? e.textContent.replace(/\s+/g, ' ').trim() : '');
const byIds = (e) => (e.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean).map((id) => txt(document.getElementById(id)));
const bad = [];
const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')];
for (const e of controls) {
  const names = [e.getAttribute('aria-label') || '', ...byIds(e), ...[...(e.labels || [])].map(txt),
    e.tagName === 'BUTTON' ? txt(e) : '', e.getAttribute('title') || ''];
  if (!names.some((n) => n.trim())) bad.push(describe(e));
}
const svgs = [...document.querySelectorAll('svg')];
for (const e of svgs) {
  const names = [txt(e.querySelector(':scope > title')), e.getAttribute('aria-label') || '', ...byIds(e)];
  if (!names.some((n) => n.trim())) bad.push(describe(e) + ' (no <title>, aria-label or aria-labelledby)');
}
return {controls: controls.length, svgs: svgs.length, bad};
"""

# Text in the header and the shown view (or the sign-in form) whose colour does not stand
# out from its background (WCAG AA: 4.5, or 3 for large text); disabled controls are exempt.
CONTRAST_JS = COLOR_JS + r"""
const roots = [...document.querySelectorAll('#app > header, section[id^=view-], #login')].filter((r) => r.checkVisibility());
const bad = [];
let checked = 0, lowest = null;
for (const root of roots) {
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let t = walk.nextNode(); t; t = walk.nextNode()) {
    const el = t.parentElement;
    if (!t.data.trim() || !el || el.closest('.sr-only, :disabled, option, title')) continue;
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const range = document.createRange();
    range.selectNodeContents(t);
    const r = range.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const s = getComputedStyle(el);
    let fg = rgba(el instanceof SVGElement ? s.fill : s.color);
    if (!fg) { bad.push(`${describe(el)}: colour ${s.color} not understood`); continue; }
    let alpha = 1;
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) alpha *= parseFloat(getComputedStyle(n).opacity);
    const bg = backdrop(el);
    fg = over([fg[0], fg[1], fg[2], fg[3] * alpha], bg);
    const ratio = contrast(fg, bg);
    const size = parseFloat(s.fontSize), weight = parseInt(s.fontWeight, 10) || 400;
    const need = size >= 24 || (size >= 18.66 && weight >= 700) ? 3 : 4.5;
    checked++;
    if (lowest === null || ratio < lowest.ratio) lowest = {ratio, what: describe(el)};
    if (ratio < need) bad.push(`${describe(el)} ${JSON.stringify(t.data.trim().slice(0, 40))}: ${css(fg)} on ${css(bg)} = ${ratio.toFixed(2)} (< ${need})`);
  }
}
const b = getComputedStyle(document.body);
const bodyBg = backdrop(document.body), bodyFg = over(rgba(b.color), bodyBg);
return {checked, bad, lowest, body: {bg: b.backgroundColor, fg: b.color, ratio: contrast(bodyFg, bodyBg)},
  dark: matchMedia('(prefers-color-scheme: dark)').matches};
"""

# Whether anything in the nav or the shown view sticks out of the viewport sideways (what
# sits in a scrolling box, like a wide table in its .table-wrap, is that box's business).
OVERFLOW_JS = COLOR_JS + r"""
const w = document.documentElement.clientWidth;
const roots = [...document.querySelectorAll('#app > header, section[id^=view-]')].filter((r) => r.checkVisibility());
const bad = [];
for (const root of roots) {
  for (const e of [root, ...root.querySelectorAll('*')]) {
    if (!e.checkVisibility()) continue;
    let clipped = false;
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') { clipped = true; break; }
    }
    if (clipped) continue;
    const r = e.getBoundingClientRect();
    if (r.width && (r.right > w + 0.5 || r.left < -0.5)) bad.push(`${describe(e)}: ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
}
return {inner: innerWidth, client: w, scroll: document.documentElement.scrollWidth, bad: bad.slice(0, 15), n: bad.length};
"""

# Records layout shifts (all buffered ones since the page loaded, and what comes) and the
# refreshes of the header's #conn ("Updated HH:MM:SS" after each successful poll).
SHIFTS_JS = COLOR_JS + r"""
if (window.__ls) { window.__ls.obs.disconnect(); window.__ls.mo.disconnect(); }
const ls = (window.__ls = {t0: performance.now(), entries: [], refreshes: 0});
const keep = (list) => {
  for (const e of list) ls.entries.push({t: e.startTime, value: e.value, input: e.hadRecentInput,
    sources: (e.sources || []).map((s) => `${describe(s.node)} ${JSON.stringify(s.previousRect)} -> ${JSON.stringify(s.currentRect)}`)});
};
ls.keep = keep;
ls.obs = new PerformanceObserver((l) => keep(l.getEntries()));
ls.obs.observe({type: 'layout-shift', buffered: true});
ls.mo = new MutationObserver(() => ls.refreshes++);
ls.mo.observe(document.getElementById('conn'), {childList: true, characterData: true, subtree: true});
"""

# After two frames (shifts are measured when the page is drawn): the shifts without recent
# input, before and since the recorder was installed.
SHIFTS_READ_JS = r"""
const done = arguments[arguments.length - 1];
requestAnimationFrame(() => requestAnimationFrame(() => {
  const ls = window.__ls;
  ls.keep(ls.obs.takeRecords());
  const mine = ls.entries.filter((e) => !e.input);
  const sum = (es) => es.reduce((a, e) => a + e.value, 0);
  const since = mine.filter((e) => e.t >= ls.t0), before = mine.filter((e) => e.t < ls.t0);
  done({since: sum(since), before: sum(before), refreshes: ls.refreshes, entries: since.concat(before).slice(0, 10),
    with_input: ls.entries.length - mine.length});
}));
"""




class Usable:
    """Mixed into ui.UI (uses its helpers: q, qs, shown, wait, fail, shot, go, …)."""

    def focused(self):
        return self.driver.execute_script(FOCUS_JS)

    def press(self, key, shift=False):
        """Sends `key` to whatever has the focus (as a user would), and says what has it now."""
        keys = ActionChains(self.driver)
        if shift:
            keys.key_down(Keys.SHIFT).send_keys(key).key_up(Keys.SHIFT)
        else:
            keys.send_keys(key)
        keys.perform()
        return self.focused()

    def check_indicator(self, f):
        if not f["indicator"]:
            self.fail(f"a visible focus indicator (outline or box-shadow) on {f['what']}, focused from the keyboard", f["style"])
        if f["ratio"] is not None and f["ratio"] < 3:
            self.fail(
                f"the focus outline of {f['what']} standing out from what is behind it (contrast >= 3)",
                f"contrast {f['ratio']:.2f}; {f['style']}",
            )

    def keyboard(self):
        """Tab walks the nav links in order, each with a focus ring; Enter on the traffic link
        opens that view and moves the focus to its heading; Tab goes on into the view; the
        playground's controls are reached and ringed the same way."""
        # From the top of a freshly loaded page (the tab keeps its sign-in): nothing focused.
        self.driver.refresh()
        self.wait("#app shown again after reloading the signed-in tab", lambda: self.shown("#app"))
        start = self.focused()["what"]
        if start != "the document body":
            self.fail("nothing focused after loading the page", f"focus on {start}")
        expected = [f"#{v}" for v in VIEWS]
        walked = []
        for _ in VIEWS:
            f = self.press(Keys.TAB)
            walked.append(f["href"] or f["what"])
            if f["href"] in expected:
                self.check_indicator(f)
        if walked != expected:
            self.fail(f"Tab from {start} visiting the nav links in order {expected}", f"focus went {walked}")
        for _ in range(len(VIEWS)):
            if self.focused()["href"] == "#traffic":
                break
            self.press(Keys.TAB, shift=True)
        f = self.focused()
        if f["href"] != "#traffic":
            self.fail('Shift+Tab back to a[href="#traffic"]', f"focus on {f['what']}")
        self.press(Keys.ENTER)
        self.wait(
            'section#view-traffic shown (and only it) after Enter on a[href="#traffic"]',
            lambda: self.shown("section#view-traffic")
            and not any(self.shown(f"section#view-{v}") for v in VIEWS if v != "traffic"),
            showed=lambda: "shown sections: " + str([v for v in VIEWS if self.shown(f"section#view-{v}")]),
        )
        self.wait(
            "the focus on the traffic view's heading (h2#h-traffic) after Enter",
            lambda: self.focused()["id"] == "h-traffic",
            showed=lambda: f"focus on {self.focused()['what']}",
        )
        into = [self.press(Keys.TAB) for _ in range(2)]
        for f in into:
            if f["view"] != "view-traffic":
                self.fail("Tab from the traffic heading going on into the traffic view", f"focus on {f['what']}")
            self.check_indicator(f)
        back = []
        for _ in range(8):
            f = self.press(Keys.TAB, shift=True)
            back.append(f["what"])
            self.check_indicator(f)
            if f["href"] == "#playground":
                break
        else:
            self.fail('Shift+Tab from the traffic view back to a[href="#playground"]', f"focus went {back}")
        self.press(Keys.ENTER)
        self.wait(
            "the focus on h2#h-playground after Enter on a[href=\"#playground\"]",
            lambda: self.shown("section#view-playground") and self.focused()["id"] == "h-playground",
            showed=lambda: f"focus on {self.focused()['what']}; " + self.summary(),
        )
        controls = ["pg-model", "pg-api-key", "pg-prompt", "pg-send", "pg-output"]
        reached = []
        for _ in controls:
            f = self.press(Keys.TAB)
            reached.append(f["id"] or f["what"])
            self.check_indicator(f)
        if reached != controls:
            self.fail(f"Tab through the playground's controls in order {controls}", f"focus went {reached}")
        print(f"keyboard: nav {walked}, traffic view {[f['what'] for f in into]}, back {back}, playground {reached}")
        print(f"keyboard focus: {self.shot('keyboard-focus')}")

    def dom_node(self, backend_id):
        try:
            node = self.driver.execute_cdp_cmd("DOM.describeNode", {"backendNodeId": backend_id})["node"]
        except WebDriverException:
            return f"(node {backend_id})"
        attrs = node.get("attributes", [])
        attrs = dict(zip(attrs[::2], attrs[1::2]))
        return (
            node.get("localName", "?")
            + (f"#{attrs['id']}" if attrs.get("id") else "")
            + (f".{attrs['class']}" if attrs.get("class") else "")
        )

    def names(self, where):
        """Every control, link, image (chart), table and region Chromium exposes to screen
        readers has a name (the accessibility tree, via the DevTools protocol)."""
        tree = self.driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})
        bad, count = [], 0
        for n in tree.get("nodes", []):
            role = (n.get("role") or {}).get("value")
            if n.get("ignored") or role not in NAMED_ROLES:
                continue
            count += 1
            if not str((n.get("name") or {}).get("value") or "").strip():
                bad.append(f"{role} {self.dom_node(n.get('backendDOMNodeId'))}")
        if bad:
            self.fail(f"an accessible name on every control, link, chart, table and region of {where}", f"unnamed: {bad}")
        return count

    def themes(self, where):
        """Dark and light (as the system says) give different backgrounds, and text readable on both."""
        seen = {}
        try:
            for scheme in ["dark", "light"]:
                self.driver.execute_cdp_cmd(
                    "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
                )
                r = self.driver.execute_script(CONTRAST_JS)
                if r["dark"] != (scheme == "dark"):
                    self.fail(f"prefers-color-scheme: {scheme} in effect", f"matchMedia dark = {r['dark']}")
                if r["body"]["ratio"] < 4.5:
                    self.fail(
                        f"body text readable in the {scheme} theme (contrast >= 4.5)",
                        f"{r['body']['fg']} on {r['body']['bg']} = {r['body']['ratio']:.2f}",
                    )
                if r["bad"]:
                    self.fail(f"text in {where} readable in the {scheme} theme", "\n    " + "\n    ".join(r["bad"][:15]))
                if not r["checked"]:
                    self.fail(f"text to check in {where}", "none shown")
                seen[scheme] = r
        finally:
            self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        if seen["dark"]["body"]["bg"] == seen["light"]["body"]["bg"]:
            self.fail(
                "a different body background in the dark and the light theme",
                f"{seen['dark']['body']['bg']} in both",
            )
        return seen

    def fits(self, where):
        r = self.driver.execute_script(OVERFLOW_JS)
        if r["n"] or r["scroll"] > r["inner"]:
            self.fail(
                f"nothing of the nav or {where} wider than the {r['inner']} px viewport",
                f"document {r['scroll']} px wide; {r['n']} element(s) sticking out: {r['bad']}",
            )
        return r

    def holds_still(self, view, ready, watch, what, handover=None):
        """Opens the view and, once it shows its data (`ready`), records layout shifts while it
        refreshes twice (the header's #conn changing twice, the first poll 2 s after the click
        that opened it, well clear of that input) and `watch()`'s condition comes true; wants
        no shift meanwhile."""
        self.go(view)
        self.wait(f"the {view} view filled in", ready)
        self.driver.execute_script(SHIFTS_JS)
        changed = watch()
        if handover:
            self.handover(handover)
        self.wait(
            f"two refreshes of the {view} view (#conn changing twice) and {what}",
            lambda: self.driver.execute_script("return window.__ls.refreshes") >= 2 and changed(),
            showed=lambda: f"{self.driver.execute_script('return window.__ls.refreshes')} refreshes; "
            + f"{self.describe('#conn')}; {self.summary()}",
        )
        r = self.driver.execute_async_script(SHIFTS_READ_JS)
        print(
            f"{view}: layout shift {r['since']:.4f} over {r['refreshes']} refreshes "
            f"(before them: {r['before']:.4f} without input, {r['with_input']} entries right after input)"
        )
        if r["since"] >= 0.01:
            self.fail(
                f"no layout shift in the {view} view while its data updates (sum of layout-shift values < 0.01)",
                f"{r['since']:.4f}: {r['entries']}",
            )
        return r

    def usable(self):
        a = self.args
        self.open()
        self.wait("#login shown", lambda: self.shown("#login"))
        n = self.names("the sign-in form")
        self.themes("the sign-in form")
        print(f"sign-in form: {n} named nodes, readable in both themes")

        self.signed_in()
        self.keyboard()
        self.console_check()

        # The backends view while a backend goes down, the traffic view while requests come in.
        self.holds_still(
            "backends",
            lambda: self.backend_status(a.backend),
            lambda: lambda: "unhealthy" in (self.backend_status(a.backend) or "").lower(),
            f"{a.backend} shown unhealthy (the test fails its health probe)",
            handover="backends",
        )

        def more_requests():
            n = self.number("#traffic-requests")
            return lambda: (self.number("#traffic-requests") or 0) > n

        self.holds_still(
            "traffic",
            lambda: self.number("#traffic-requests") is not None,
            more_requests,
            "#traffic-requests growing (the test sends requests all along)",
        )

        labels = self.driver.execute_script(NAMES_JS)
        if labels["bad"]:
            self.fail("a label (or aria-label, aria-labelledby, text) for every control, a title for every svg", str(labels["bad"]))
        print(f"labels: {labels['controls']} controls and {labels['svgs']} charts named")

        ready, hooks = self.view_checks(a.models)
        for width, height in [(1280, 800), (390, 800)]:
            self.driver.set_window_size(width, height)
            for view in VIEWS:
                self.go(view)
                self.wait(f"the {view} view filled in ({hooks[view]})", ready[view])
                fit = self.fits(f"the {view} view")
                note = ""
                if width == 1280:
                    named = self.names(f"the {view} view")
                    seen = self.themes(f"the {view} view")
                    lowest = {k: round(v["lowest"]["ratio"], 2) for k, v in seen.items() if v["lowest"]}
                    note = f", {named} named nodes, lowest text contrast {lowest}"
                print(f"{view} at {fit['inner']} px{note}: {self.shot(f'{view}-{width}')}")
            self.console_check()
        self.go("traffic")
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
        )
        print(f"traffic, dark theme, 390 px: {self.shot('traffic-390-dark')}")
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        self.console_check()
