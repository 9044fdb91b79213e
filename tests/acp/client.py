"""Drives `continuum acp` through whole sessions with the official ACP Python SDK
(PyPI `agent-client-protocol`, module `acp`), one scenario per run.

    client.py SCENARIO --bin BIN --config CFG [--workdir DIR] [options]

Prints `ok SCENARIO` when every expectation held; otherwise exits 1 naming what was expected
and what the agent sent, with the last messages it sent (all of them, on a pass too, with
ACP_CLIENT_DUMP=1 in the environment). The scenarios (the upstream
that answers them is the scripted one of tests/it/acp.rs, or the built-in mock backend):

  basic              initialize, session/new, a streamed prompt (the mock echoes it)
  cancel             session/cancel while a slow answer streams: stopReason cancelled
  permission_allow   `write notes.txt`: asked, allowed once, written through fs/write_text_file
  permission_reject  the same, rejected: nothing written, the tool call failed, end_turn
  permission_always  allowed always: a second write in the session does not ask
  read_allow         `read secret.txt`: kind read runs without asking, the text reaches the model
  modes              accept_edits writes without asking; read_only refuses writes, reads still run
  load               --phase 1 prompts and prints `session ID`; --phase 2 --session ID (a new
                     process) loads it, checks the replay, and prompts again with the history
  mcp_stdio          a stdio MCP server (tests/acp/mcp_server.py): calc__add, kind read
  mcp_http           the same server over streamable HTTP: calc__mul, kind other (asks)
  set_model          session/set_config_option model, and the older session/set_model
  stop_reasons       reasoning as agent_thought_chunk; max_tokens; refusal
  max_turns          a model that never stops calling tools: max_turn_requests
  permission_never   rejected always: the second write is refused without asking
  cancel_permission  session/cancel while a permission request waits: stopReason cancelled
  write_unasked      a write the configured policy decides (--expect-status completed|failed)
  rich_prompt        a prompt with an image and an embedded resource
  terminal           `run echo …` through terminal/* (the only scenario declaring a terminal)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import acp
from acp import RequestError, schema as S
from acp.connection import StreamDirection, StreamEvent

HERE = Path(__file__).resolve().parent
CALL_TIMEOUT = 20.0  # seconds any one request may take
MODE_IDS = {"default", "accept_edits", "read_only"}
PERMISSION_KINDS = {"allow_once", "allow_always", "reject_once", "reject_always"}
WRITTEN = "hello from the model"  # what the scripted upstream's write_file call writes


class Failure(Exception):
    pass


def check(cond: Any, message: str) -> None:
    if not cond:
        raise Failure(message)


def short(v: Any, limit: int = 600) -> str:
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return text if len(text) <= limit else text[:limit] + "…"


class Recorder:
    """The Client side: records everything the agent sends, in the order it arrived, and
    answers the agent's requests (permissions per `permission`, files on the real disk)."""

    def __init__(self, workdir: Path, permission: str, terminal: bool = False) -> None:
        self.workdir = workdir
        self.permission = permission
        self.terminal = terminal  # the terminal capability this client declares
        self.terminals: dict[str, dict[str, Any]] = {}
        self.terminal_calls: list[tuple[str, dict[str, Any]]] = []
        self.log: list[dict[str, Any]] = []  # every incoming message, raw, in order
        self.updates: list[dict[str, Any]] = []  # session/update params, raw, in order
        self.permissions: list[dict[str, Any]] = []  # session/request_permission params
        self.reads: list[dict[str, Any]] = []
        self.writes: list[dict[str, Any]] = []
        self.problems: list[str] = []  # protocol violations seen on the way
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.conn: Any = None  # the ClientSideConnection, once spawned

    # -- the raw stream ------------------------------------------------------------------
    def observe(self, event: StreamEvent) -> None:
        if event.direction != StreamDirection.INCOMING:
            return
        msg = event.message
        self.log.append(msg)
        if msg.get("jsonrpc") != "2.0":
            self.problems.append(f"message without jsonrpc 2.0: {short(msg)}")
        method = msg.get("method")
        params = msg.get("params")
        models = {
            "session/update": S.SessionNotification,
            "session/request_permission": S.RequestPermissionRequest,
            "fs/read_text_file": S.ReadTextFileRequest,
            "fs/write_text_file": S.WriteTextFileRequest,
            "terminal/create": S.CreateTerminalRequest,
            "terminal/output": S.TerminalOutputRequest,
            "terminal/wait_for_exit": S.WaitForTerminalExitRequest,
            "terminal/release": S.ReleaseTerminalRequest,
            "terminal/kill": S.KillTerminalRequest,
        }
        if method is not None:
            model = models.get(method)
            if model is None:
                self.problems.append(f"unexpected call from the agent: {short(msg)}")
            else:
                try:
                    model.model_validate(params)
                except Exception as e:  # pydantic's ValidationError
                    self.problems.append(f"{method} params do not fit the schema ({e}): {short(msg)}")
            if method == "session/update" and isinstance(params, dict):
                self.updates.append(params)
        self._wake()

    def _wake(self) -> None:
        for pred, fut in list(self._waiters):
            if not fut.done() and pred():
                fut.set_result(None)

    async def wait_for(self, pred: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        if pred():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise Failure(f"waited {timeout} s for {what}; it did not come") from None
        finally:
            self._waiters.remove(entry)

    # -- the Client interface ------------------------------------------------------------
    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        return None  # recorded raw, in order, by observe()

    async def request_permission(
        self, session_id: str, tool_call: S.ToolCallUpdate, options: list[S.PermissionOption], **kwargs: Any
    ) -> S.RequestPermissionResponse:
        self.permissions.append(
            {
                "sessionId": session_id,
                "toolCall": tool_call.model_dump(mode="json", by_alias=True, exclude_none=True),
                "options": [o.model_dump(mode="json", by_alias=True, exclude_none=True) for o in options],
            }
        )
        if self.permission == "cancelled":
            # The user stops the turn while the agent waits: session/cancel, and the pending
            # permission request answered `cancelled`, as the protocol asks of a client.
            await self.conn.cancel(session_id=session_id)
            return S.RequestPermissionResponse(outcome=S.DeniedOutcome(outcome="cancelled"))
        chosen = next((o for o in options if o.kind == self.permission), None)
        if chosen is None:
            self.problems.append(
                f"permission request without a {self.permission} option: {short([o.kind for o in options])}"
            )
            return S.RequestPermissionResponse(outcome=S.DeniedOutcome(outcome="cancelled"))
        return S.RequestPermissionResponse(outcome=S.AllowedOutcome(outcome="selected", option_id=chosen.option_id))

    def _path(self, path: str) -> Path:
        p = Path(path)
        if not p.is_absolute():
            self.problems.append(f"fs path is not absolute (ACP wants absolute paths): {path}")
            p = self.workdir / p
        return p

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **kwargs: Any
    ) -> S.ReadTextFileResponse:
        self.reads.append({"sessionId": session_id, "path": path, "line": line, "limit": limit})
        p = self._path(path)
        if not p.is_file():
            raise RequestError.resource_not_found(path)
        lines = p.read_text().splitlines(keepends=True)
        start = (line - 1) if line else 0
        end = start + limit if limit else None
        return S.ReadTextFileResponse(content="".join(lines[start:end]))

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> S.WriteTextFileResponse:
        self.writes.append({"sessionId": session_id, "path": path, "content": content})
        p = self._path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        return S.WriteTextFileResponse()

    # -- terminals: real processes, when the scenario declares the capability ----------------
    async def create_terminal(
        self,
        session_id: str,
        command: str,
        args: list[str] | None = None,
        env: list[Any] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        **kwargs: Any,
    ) -> S.CreateTerminalResponse:
        self.terminal_calls.append(("create", {"command": command, "args": args or [], "cwd": cwd}))
        if not self.terminal:
            self.problems.append("terminal/create called although the client declared no terminal")
            raise RequestError.method_not_found("terminal/create")
        extra = {e.name: e.value for e in env or []}
        proc = await asyncio.create_subprocess_exec(
            command,
            *(args or []),
            cwd=cwd or str(self.workdir),
            env={**os.environ, **extra},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        tid = f"term-{len(self.terminals) + 1}"
        self.terminals[tid] = {"proc": proc, "output": asyncio.ensure_future(proc.stdout.read())}
        return S.CreateTerminalResponse(terminal_id=tid)

    def _terminal(self, what: str, terminal_id: str) -> dict[str, Any]:
        self.terminal_calls.append((what, {"terminalId": terminal_id}))
        self._wake()
        t = self.terminals.get(terminal_id)
        if t is None:
            self.problems.append(f"terminal/{what} for an unknown or released terminal {terminal_id}")
            raise RequestError.invalid_params({"terminalId": terminal_id})
        return t

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str, **kwargs: Any) -> S.WaitForTerminalExitResponse:
        t = self._terminal("wait_for_exit", terminal_id)
        code = await t["proc"].wait()
        return S.WaitForTerminalExitResponse(exit_code=code) if code >= 0 else S.WaitForTerminalExitResponse(signal=f"signal {-code}")

    async def terminal_output(self, session_id: str, terminal_id: str, **kwargs: Any) -> S.TerminalOutputResponse:
        t = self._terminal("output", terminal_id)
        proc = t["proc"]
        output = (await t["output"]).decode(errors="replace") if proc.returncode is not None else ""
        status = S.TerminalExitStatus(exit_code=proc.returncode) if proc.returncode is not None else None
        return S.TerminalOutputResponse(output=output, truncated=False, exit_status=status)

    async def release_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> S.ReleaseTerminalResponse:
        t = self._terminal("release", terminal_id)
        if t["proc"].returncode is None:
            t["proc"].kill()
        del self.terminals[terminal_id]
        return S.ReleaseTerminalResponse()

    async def kill_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> S.KillTerminalResponse:
        t = self._terminal("kill", terminal_id)
        if t["proc"].returncode is None:
            t["proc"].kill()
        return S.KillTerminalResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    def on_connect(self, conn: Any) -> None:
        pass


# -- helpers over the recorded stream ------------------------------------------------------


def kind_of(update: dict[str, Any]) -> str:
    return update.get("update", {}).get("sessionUpdate", "")


def chunk_text(updates: list[dict[str, Any]], kind: str) -> str:
    out = []
    for u in updates:
        if kind_of(u) == kind:
            content = u["update"].get("content") or {}
            if content.get("type") == "text":
                out.append(content.get("text", ""))
    return "".join(out)


def tool_events(updates: list[dict[str, Any]], tool_call_id: str) -> list[dict[str, Any]]:
    return [
        u["update"]
        for u in updates
        if kind_of(u) in ("tool_call", "tool_call_update") and u["update"].get("toolCallId") == tool_call_id
    ]


def final_status(events: list[dict[str, Any]]) -> str | None:
    status = None
    for e in events:
        if e.get("status") is not None:
            status = e["status"]
    return status


class Ctx:
    def __init__(self, args: argparse.Namespace, conn: Any, rec: Recorder) -> None:
        self.args = args
        self.conn = conn
        self.rec = rec
        self.workdir = Path(args.workdir).resolve()

    async def call(self, what: str, aw: Any, timeout: float = CALL_TIMEOUT) -> Any:
        try:
            return await asyncio.wait_for(aw, timeout)
        except asyncio.TimeoutError:
            raise Failure(f"{what}: no answer within {timeout} s") from None
        except RequestError as e:
            raise Failure(f"{what}: JSON-RPC error {e.code} {e} {short(e.data)}") from None

    async def expect_error(self, what: str, aw: Any, code: int | None) -> RequestError:
        try:
            result = await asyncio.wait_for(aw, CALL_TIMEOUT)
        except RequestError as e:
            check(code is None or e.code == code, f"{what}: expected error {code}, got {e.code} ({e})")
            return e
        except asyncio.TimeoutError:
            raise Failure(f"{what}: no answer within {CALL_TIMEOUT} s") from None
        raise Failure(f"{what}: expected JSON-RPC error {code}, got a result: {short(result)}")

    async def initialize(self) -> S.InitializeResponse:
        resp = await self.call(
            "initialize",
            self.conn.initialize(
                protocol_version=acp.PROTOCOL_VERSION,
                client_capabilities=S.ClientCapabilities(
                    fs=S.FileSystemCapabilities(read_text_file=True, write_text_file=True),
                    terminal=self.rec.terminal,
                ),
                client_info=S.Implementation(name="continuum-acp-tests", version="1.0"),
            ),
        )
        check(resp.protocol_version == 1, f"initialize: protocolVersion {resp.protocol_version}, expected 1")
        return resp

    async def new_session(self, mcp_servers: list[Any] | None = None) -> S.NewSessionResponse:
        resp = await self.call(
            "session/new", self.conn.new_session(cwd=str(self.workdir), mcp_servers=mcp_servers or [])
        )
        check(resp.session_id, f"session/new: no sessionId: {short(resp.model_dump(by_alias=True))}")
        return resp

    async def prompt(self, session_id: str, text: str, expect: str | None = "end_turn") -> tuple[str, list[dict]]:
        """One turn; returns its stopReason and the session/update params it brought."""
        start = len(self.rec.updates)
        resp = await self.call(f"session/prompt {text!r}", self.conn.prompt(session_id=session_id, prompt=[acp.text_block(text)]))
        turn = [u for u in self.rec.updates[start:] if u.get("sessionId") == session_id]
        others = [u for u in self.rec.updates[start:] if u.get("sessionId") != session_id]
        check(not others, f"prompt {text!r}: updates for another session: {short(others)}")
        if expect is not None:
            check(
                resp.stop_reason == expect,
                f"prompt {text!r}: stopReason {resp.stop_reason}, expected {expect}; updates: {short(turn, 2000)}",
            )
        return resp.stop_reason, turn

    def tool_call_of(self, turn: list[dict], kind: str | None, title_hint: str) -> str:
        """The id of the turn's one tool call (checking its kind); fails if there is none."""
        starts = [u["update"] for u in turn if kind_of(u) == "tool_call"]
        check(starts, f"{title_hint}: expected a tool_call update; the turn sent {short(turn, 2000)}")
        check(len(starts) == 1, f"{title_hint}: expected one tool_call, got {len(starts)}: {short(starts, 2000)}")
        tc = starts[0]
        if kind is not None:
            check(tc.get("kind") == kind, f"{title_hint}: tool_call kind {tc.get('kind')!r}, expected {kind!r}: {short(tc)}")
        return tc["toolCallId"]

    def expect_status(self, turn: list[dict], tool_call_id: str, status: str, what: str) -> list[dict]:
        events = tool_events(turn, tool_call_id)
        updates = [e for e in events if e.get("sessionUpdate") == "tool_call_update"]
        check(updates, f"{what}: no tool_call_update for {tool_call_id}; its events: {short(events, 2000)}")
        got = final_status(events)
        check(got == status, f"{what}: tool call {tool_call_id} ended {got!r}, expected {status!r}: {short(events, 2000)}")
        return events


def model_option(options: list[Any] | None) -> Any:
    for o in options or []:
        if o.id == "model":
            return o
    return None


def option_values(opt: Any) -> list[str]:
    values = []
    for o in opt.options:
        if isinstance(o, S.SessionConfigSelectOption):
            values.append(o.value)
        else:  # a group
            values.extend(x.value for x in o.options)
    return values


# -- scenarios -----------------------------------------------------------------------------


async def scenario_basic(c: Ctx) -> None:
    init = await c.initialize()
    caps = init.agent_capabilities
    check(caps is not None, "initialize: no agentCapabilities")
    check(caps.load_session is True, f"initialize: loadSession {caps.load_session}, expected true (the default)")
    pc = caps.prompt_capabilities
    check(pc is not None and pc.image and pc.embedded_context, f"initialize: promptCapabilities {pc}, expected image and embeddedContext")
    check(caps.mcp_capabilities is not None and caps.mcp_capabilities.http, f"initialize: mcpCapabilities {caps.mcp_capabilities}, expected http")
    check(init.agent_info is not None, "initialize: no (valid) agentInfo")
    check(init.agent_info.name == "continuum", f"initialize: agentInfo.name {init.agent_info.name!r}")
    check(init.agent_info.version, "initialize: agentInfo.version is empty")
    raw_init = next(m for m in c.rec.log if m.get("id") is not None and "result" in m)
    check("agentInfo" in raw_init["result"], f"initialize: agentInfo not in the raw result {short(raw_init)}")

    sess = await c.new_session()
    check(sess.modes is not None, "session/new: no modes")
    ids = {m.id for m in sess.modes.available_modes}
    check(MODE_IDS <= ids, f"session/new: modes {sorted(ids)}, expected {sorted(MODE_IDS)}")
    check(sess.modes.current_mode_id == "default", f"session/new: current mode {sess.modes.current_mode_id}")
    opt = model_option(sess.config_options)
    check(opt is not None, f"session/new: no `model` config option in {short(sess.model_dump(mode='json', by_alias=True))}")
    check(opt.type == "select", f"session/new: model option is {opt.type}, expected select")
    values = option_values(opt)
    for m in c.args.models:
        check(m in values, f"session/new: model option lists {values}, expected {m}")
    if c.args.expect_model:
        check(opt.current_value == c.args.expect_model, f"session/new: model {opt.current_value}, expected {c.args.expect_model}")

    for text in ("hello from the basic scenario", "and a second turn"):
        _, turn = await c.prompt(sess.session_id, text)
        chunks = [u for u in turn if kind_of(u) == "agent_message_chunk"]
        check(chunks, f"prompt {text!r}: no agent_message_chunk; updates: {short(turn, 2000)}")
        answer = chunk_text(turn, "agent_message_chunk")
        check(answer.strip(), f"prompt {text!r}: the answer's text is empty: {short(turn, 2000)}")
        want = c.args.expect_text or text
        check(want in answer, f"prompt {text!r}: answer {answer!r} does not contain {want!r}")


async def scenario_cancel(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    start = len(c.rec.updates)
    task = asyncio.ensure_future(c.conn.prompt(session_id=sid, prompt=[acp.text_block("slow: count to two hundred")]))
    await c.rec.wait_for(
        lambda: any(kind_of(u) == "agent_message_chunk" for u in c.rec.updates[start:]) or task.done(),
        "the first agent_message_chunk of the slow answer",
    )
    if task.done():
        err = task.exception()
        raise Failure(f"the slow prompt ended before any chunk: {err if err else task.result()}")
    t0 = time.monotonic()
    await c.conn.cancel(session_id=sid)
    try:
        resp = await asyncio.wait_for(task, 5.0)
    except asyncio.TimeoutError:
        raise Failure("session/cancel: the prompt did not answer within 5 s") from None
    except RequestError as e:
        raise Failure(f"session/cancel: the prompt answered an error {e.code} {e}, expected stopReason cancelled") from None
    elapsed = time.monotonic() - t0
    check(resp.stop_reason == "cancelled", f"session/cancel: stopReason {resp.stop_reason}, expected cancelled")
    check(elapsed < 3.0, f"session/cancel: the prompt took {elapsed:.1f} s to answer (the stream would last 10 s)")
    got = chunk_text(c.rec.updates[start:], "agent_message_chunk")
    check(got.count("tick") < 150, f"session/cancel: the whole slow answer came through: {len(got)} chars")
    # The session goes on.
    _, turn = await c.prompt(sid, "hello after the cancel")
    check(chunk_text(turn, "agent_message_chunk").strip(), "after cancel: the next prompt got no text")


async def write_turn(c: Ctx, sid: str, name: str) -> tuple[str, list[dict]]:
    _, turn = await c.prompt(sid, f"write {name}")
    return c.tool_call_of(turn, "edit", f"write {name}"), turn


async def scenario_permission_allow(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    tcid, turn = await write_turn(c, sid, "notes.txt")
    target = c.workdir / "notes.txt"
    check(len(c.rec.permissions) == 1, f"expected one permission request, got {short(c.rec.permissions)}")
    perm = c.rec.permissions[0]
    check(perm["toolCall"].get("toolCallId") == tcid, f"permission request for {perm['toolCall'].get('toolCallId')}, the tool call is {tcid}")
    kinds = {o["kind"] for o in perm["options"]}
    check(kinds == PERMISSION_KINDS, f"permission options {sorted(kinds)}, expected {sorted(PERMISSION_KINDS)}")
    check(c.rec.writes, "allowed: no fs/write_text_file call")
    w = c.rec.writes[0]
    check(Path(w["path"]) == target, f"fs/write_text_file path {w['path']}, expected {target}")
    check(w["content"] == WRITTEN, f"fs/write_text_file content {w['content']!r}")
    check(target.read_text() == WRITTEN, f"{target} holds {target.read_text()!r}")
    # Asked before writing.
    order = [m.get("method") for m in c.rec.log if m.get("method") in ("session/request_permission", "fs/write_text_file")]
    check(order == ["session/request_permission", "fs/write_text_file"], f"order of the agent's calls: {order}")
    events = c.expect_status(turn, tcid, "completed", "allowed write")
    diffs = [x for e in events for x in (e.get("content") or []) if x.get("type") == "diff"]
    check(diffs, f"allowed write: no diff content in the tool call's events: {short(events, 2000)}")
    check(diffs[-1].get("newText") == WRITTEN and Path(diffs[-1].get("path", "")) == target, f"diff content {short(diffs[-1])}")
    check(chunk_text(turn, "agent_message_chunk").strip(), "allowed write: no final answer after the tool call")


async def scenario_permission_reject(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    tcid, turn = await write_turn(c, sid, "notes.txt")
    check(len(c.rec.permissions) == 1, f"expected one permission request, got {short(c.rec.permissions)}")
    check(not c.rec.writes, f"rejected, yet fs/write_text_file was called: {short(c.rec.writes)}")
    check(not (c.workdir / "notes.txt").exists(), "rejected, yet notes.txt exists")
    c.expect_status(turn, tcid, "failed", "rejected write")
    check(chunk_text(turn, "agent_message_chunk").strip(), "rejected write: no final answer after the refusal")
    # Rejected once: the next write asks again.
    await write_turn(c, sid, "other.txt")
    check(len(c.rec.permissions) == 2, f"reject_once: the second write should ask again; asked {len(c.rec.permissions)} times")


async def scenario_permission_always(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    tcid, turn = await write_turn(c, sid, "a.txt")
    c.expect_status(turn, tcid, "completed", "first write")
    tcid, turn = await write_turn(c, sid, "b.txt")
    c.expect_status(turn, tcid, "completed", "second write")
    check(len(c.rec.permissions) == 1, f"allow_always: expected one permission request in all, got {len(c.rec.permissions)}")
    for n in ("a.txt", "b.txt"):
        check((c.workdir / n).read_text() == WRITTEN, f"{n} not written")
    # Another session asks again.
    sid2 = (await c.new_session()).session_id
    await write_turn(c, sid2, "c.txt")
    check(len(c.rec.permissions) == 2, f"allow_always holds for its session only; a new session asked {len(c.rec.permissions) - 1} times")


async def scenario_read_allow(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    secret = "the secret word is marmalade"
    (c.workdir / "secret.txt").write_text(secret + "\n")
    _, turn = await c.prompt(sid, "read secret.txt")
    tcid = c.tool_call_of(turn, "read", "read secret.txt")
    check(not c.rec.permissions, f"kind read asked for permission under the default config: {short(c.rec.permissions)}")
    check(len(c.rec.reads) == 1, f"expected one fs/read_text_file, got {short(c.rec.reads)}")
    check(Path(c.rec.reads[0]["path"]) == c.workdir / "secret.txt", f"read path {c.rec.reads[0]['path']}")
    c.expect_status(turn, tcid, "completed", "read")
    answer = chunk_text(turn, "agent_message_chunk")
    check("marmalade" in answer, f"the final answer {answer!r} does not carry the file's text back from the model")


async def scenario_modes(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    await c.call("session/set_mode accept_edits", c.conn.set_session_mode(session_id=sid, mode_id="accept_edits"))
    tcid, turn = await write_turn(c, sid, "a.txt")
    c.expect_status(turn, tcid, "completed", "accept_edits write")
    check(not c.rec.permissions, f"accept_edits: a write asked for permission: {short(c.rec.permissions)}")
    check((c.workdir / "a.txt").read_text() == WRITTEN, "accept_edits: a.txt not written")

    await c.call("session/set_mode read_only", c.conn.set_session_mode(session_id=sid, mode_id="read_only"))
    tcid, turn = await write_turn(c, sid, "b.txt")
    c.expect_status(turn, tcid, "failed", "read_only write")
    check(not c.rec.permissions, f"read_only: a write asked for permission: {short(c.rec.permissions)}")
    check(not (c.workdir / "b.txt").exists(), "read_only: b.txt was written")
    check(len(c.rec.writes) == 1, f"read_only: fs/write_text_file called: {short(c.rec.writes)}")
    _, turn = await c.prompt(sid, "read a.txt")
    tcid = c.tool_call_of(turn, "read", "read_only read")
    c.expect_status(turn, tcid, "completed", "read_only read")
    check(WRITTEN in chunk_text(turn, "agent_message_chunk"), "read_only: the read's text did not reach the answer")
    await c.expect_error("session/set_mode no-such-mode", c.conn.set_session_mode(session_id=sid, mode_id="no-such-mode"), -32602)


async def scenario_load(c: Ctx) -> None:
    init = await c.initialize()
    check(init.agent_capabilities.load_session, "initialize: loadSession is not true")
    state_file = Path(c.args.state)
    if c.args.phase == 1:
        sid = (await c.new_session()).session_id
        user = "remember the word pineapple"
        _, turn = await c.prompt(sid, user)
        agent = chunk_text(turn, "agent_message_chunk")
        check(agent.strip(), "phase 1: empty answer")
        state_file.write_text(json.dumps({"session_id": sid, "user": user, "agent": agent}))
        print(f"session {sid}")
        return
    state = json.loads(state_file.read_text())
    sid = c.args.session or state["session_id"]
    check(sid == state["session_id"], f"--session {sid} is not phase 1's {state['session_id']}")
    await c.expect_error(
        "session/load of an unknown id",
        c.conn.load_session(cwd=str(c.workdir), session_id="no-such-session", mcp_servers=[]),
        -32002,
    )
    start = len(c.rec.updates)
    await c.call("session/load", c.conn.load_session(cwd=str(c.workdir), session_id=sid, mcp_servers=[]))
    replay = [u for u in c.rec.updates[start:] if u.get("sessionId") == sid]
    check(replay, "session/load: nothing replayed before its answer")
    user = chunk_text(replay, "user_message_chunk")
    agent = chunk_text(replay, "agent_message_chunk")
    check(user == state["user"], f"replayed user text {user!r}, phase 1 sent {state['user']!r}")
    check(agent == state["agent"], f"replayed agent text {agent!r}, phase 1 got {state['agent']!r}")
    first_user = next(i for i, u in enumerate(replay) if kind_of(u) == "user_message_chunk")
    first_agent = next(i for i, u in enumerate(replay) if kind_of(u) == "agent_message_chunk")
    check(first_user < first_agent, "replay: the agent's message came before the user's")
    _, turn = await c.prompt(sid, "recall what I said")
    answer = chunk_text(turn, "agent_message_chunk")
    check("pineapple" in answer, f"after load, the model did not get the history: answer {answer!r}")


def stdio_mcp() -> S.McpServerStdio:
    return S.McpServerStdio(name="calc", command=sys.executable, args=[str(HERE / "mcp_server.py")], env=[])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def mcp_turn(c: Ctx, servers: list[Any], prompt: str, tool: str, kind: str, result: str) -> None:
    await c.initialize()
    sid = (await c.new_session(servers)).session_id
    _, turn = await c.prompt(sid, prompt)
    tcid = c.tool_call_of(turn, kind, prompt)
    c.expect_status(turn, tcid, "completed", f"MCP tool {tool}")
    answer = chunk_text(turn, "agent_message_chunk")
    check(result in answer, f"MCP tool {tool}: the final answer {answer!r} lacks its result {result}")


async def scenario_mcp_stdio(c: Ctx) -> None:
    await mcp_turn(c, [stdio_mcp()], "add 1234 4321", "calc__add", "read", "5555")
    check(not c.rec.permissions, f"a read-only MCP tool asked for permission: {short(c.rec.permissions)}")


async def scenario_mcp_http(c: Ctx) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "mcp_server.py"), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:  # until it accepts connections
            check(server.poll() is None, f"the MCP HTTP server exited with {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                check(time.monotonic() < deadline, "the MCP HTTP server did not start listening in 15 s")
                await asyncio.sleep(0.05)
        http = S.HttpMcpServer(type="http", name="calc", url=f"http://127.0.0.1:{port}/mcp", headers=[])
        await mcp_turn(c, [http], "mul 12 34", "calc__mul", "other", "408")
        check(len(c.rec.permissions) == 1, f"an MCP tool of kind other: expected one permission request, got {short(c.rec.permissions)}")
    finally:
        server.kill()
        server.wait()


async def scenario_set_model(c: Ctx) -> None:
    await c.initialize()
    check(len(c.args.models) >= 2, "set_model needs --models A,B")
    a, b = c.args.models[0], c.args.models[1]
    sess = await c.new_session()
    sid = sess.session_id
    opt = model_option(sess.config_options)
    check(opt is not None, "session/new: no model config option")
    check(opt.current_value == a, f"session/new: model {opt.current_value}, expected {a}")
    check({a, b} <= set(option_values(opt)), f"model option lists {option_values(opt)}")

    async def answered_by(model: str, what: str) -> None:
        _, turn = await c.prompt(sid, "who is answering?")
        text = chunk_text(turn, "agent_message_chunk")
        check(f"from {model}" in text, f"{what}: answer {text!r}, expected one from {model}")

    await answered_by(a, "before set_config_option")
    resp = await c.call("session/set_config_option", c.conn.set_config_option(config_id="model", session_id=sid, value=b))
    got = model_option(resp.config_options)
    check(got is not None and got.current_value == b, f"set_config_option answered {short(resp.model_dump(mode='json', by_alias=True))}")
    await answered_by(b, "after set_config_option")
    await c.expect_error(
        "set_config_option to an unknown model",
        c.conn.set_config_option(config_id="model", session_id=sid, value="no-such-model"),
        None,
    )
    await answered_by(b, "after a refused set_config_option")
    # The older, unstable session/set_model.
    await c.call("session/set_model", c.conn._conn.send_request("session/set_model", {"sessionId": sid, "modelId": a}))
    await answered_by(a, "after session/set_model")


async def scenario_stop_reasons(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    _, turn = await c.prompt(sid, "think first")
    thought = chunk_text(turn, "agent_thought_chunk")
    check(thought == "Let me think. Yes.", f"reasoning: agent_thought_chunk text {thought!r}")
    check("Thought about it." in chunk_text(turn, "agent_message_chunk"), "reasoning: no answer text")
    first_thought = next(i for i, u in enumerate(turn) if kind_of(u) == "agent_thought_chunk")
    first_msg = next(i for i, u in enumerate(turn) if kind_of(u) == "agent_message_chunk")
    check(first_thought < first_msg, "reasoning: the thought came after the answer")
    await c.prompt(sid, "truncate please", expect="max_tokens")
    await c.prompt(sid, "filtered please", expect="refusal")


async def scenario_max_turns(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    (c.workdir / "loop.txt").write_text("again\n")
    await c.prompt(sid, "loop read loop.txt", expect="max_turn_requests")
    # 25 model requests, each a read_file call: the last one run or not before stopping.
    check(24 <= len(c.rec.reads) <= 25, f"max_turns: {len(c.rec.reads)} reads, expected 24 or 25 (one per model request)")


async def scenario_permission_never(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    tcid, turn = await write_turn(c, sid, "a.txt")
    c.expect_status(turn, tcid, "failed", "first write (reject_always)")
    tcid, turn = await write_turn(c, sid, "b.txt")
    c.expect_status(turn, tcid, "failed", "second write (after reject_always)")
    check(len(c.rec.permissions) == 1, f"reject_always: expected one permission request in all, got {len(c.rec.permissions)}")
    check(not c.rec.writes, f"reject_always, yet fs/write_text_file was called: {short(c.rec.writes)}")


async def scenario_cancel_permission(c: Ctx) -> None:
    await c.initialize()
    sid = (await c.new_session()).session_id
    stop, turn = await c.prompt(sid, "write notes.txt", expect="cancelled")
    check(len(c.rec.permissions) == 1, f"expected one permission request, got {short(c.rec.permissions)}")
    check(not c.rec.writes and not (c.workdir / "notes.txt").exists(), "cancelled at the permission request, yet written")
    _, turn = await c.prompt(sid, "hello after the cancel")
    check(chunk_text(turn, "agent_message_chunk").strip(), "after cancel: the next prompt got no text")


async def scenario_write_unasked(c: Ctx) -> None:
    """A write under a config whose policy decides it without asking (--expect-status)."""
    await c.initialize()
    sid = (await c.new_session()).session_id
    tcid, turn = await write_turn(c, sid, "free.txt")
    want = c.args.expect_status or "completed"
    c.expect_status(turn, tcid, want, "write under the configured policy")
    check(not c.rec.permissions, f"the configured policy should decide without asking: {short(c.rec.permissions)}")
    written = (c.workdir / "free.txt").exists()
    check(written == (want == "completed"), f"free.txt written: {written}, tool call {want}")


async def scenario_terminal(c: Ctx) -> None:
    """`run echo …`: run_command (kind execute, asks) through terminal/create … release."""
    await c.initialize()
    sid = (await c.new_session()).session_id
    _, turn = await c.prompt(sid, "run echo terminal-works-42")
    tcid = c.tool_call_of(turn, "execute", "run echo")
    check(len(c.rec.permissions) == 1, f"kind execute: expected one permission request, got {short(c.rec.permissions)}")
    calls = [w for w, _ in c.rec.terminal_calls]
    check(calls[:1] == ["create"] and "release" in calls, f"terminal calls {calls}, expected create … release")
    created = c.rec.terminal_calls[0][1]
    check(created["command"] == "echo" and created["args"] == ["terminal-works-42"], f"terminal/create {created}")
    check(Path(created["cwd"] or "") == c.workdir, f"terminal/create cwd {created['cwd']}, expected the session's {c.workdir}")
    check(not c.rec.terminals, f"terminals left unreleased: {list(c.rec.terminals)}")
    events = c.expect_status(turn, tcid, "completed", "run_command")
    refs = [x for e in events for x in (e.get("content") or []) if x.get("type") == "terminal"]
    check(refs, f"run_command: no terminal content in the tool call's events: {short(events, 2000)}")
    answer = chunk_text(turn, "agent_message_chunk")
    check("terminal-works-42" in answer, f"the command's output did not reach the model: answer {answer!r}")


async def scenario_cancel_terminal(c: Ctx) -> None:
    """`run sleep 30`, cancelled while it runs: the agent kills and releases the terminal,
    the prompt answers cancelled at once, and the session goes on."""
    await c.initialize()
    sid = (await c.new_session()).session_id
    start = len(c.rec.updates)
    task = asyncio.ensure_future(c.conn.prompt(session_id=sid, prompt=[acp.text_block("run sleep 30")]))
    await c.rec.wait_for(
        lambda: any(w == "wait_for_exit" for w, _ in c.rec.terminal_calls) or task.done(),
        "terminal/wait_for_exit for `sleep 30`",
    )
    if task.done():
        raise Failure(f"the prompt ended before the command ran: {task.exception() or task.result()}")
    procs = [t["proc"] for t in c.rec.terminals.values()]
    await c.conn.cancel(session_id=sid)
    try:
        resp = await asyncio.wait_for(task, 5.0)
    except asyncio.TimeoutError:
        raise Failure("session/cancel during run_command: the prompt did not answer within 5 s") from None
    check(resp.stop_reason == "cancelled", f"stopReason {resp.stop_reason}, expected cancelled")
    calls = [w for w, _ in c.rec.terminal_calls]
    check("kill" in calls and calls[-1] == "release", f"terminal calls {calls}: expected kill, then release")
    check(all(p.returncode is not None for p in procs), "the command still runs after the cancel")
    turn = c.rec.updates[start:]
    tcid = c.tool_call_of(turn, "execute", "run sleep")
    c.expect_status(turn, tcid, "failed", "run_command cancelled")
    _, turn = await c.prompt(sid, "hello after the cancel")
    check(chunk_text(turn, "agent_message_chunk").strip(), "after cancel: the next prompt got no text")


PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


async def scenario_rich_prompt(c: Ctx) -> None:
    """A prompt with an image and an embedded resource (the upstream's request is checked in Rust)."""
    init = await c.initialize()
    pc = init.agent_capabilities.prompt_capabilities
    check(pc.image and pc.embedded_context, f"promptCapabilities {pc}")
    sid = (await c.new_session()).session_id
    blocks = [
        acp.text_block("describe this picture"),
        acp.image_block(PNG_1PX, "image/png"),
        acp.resource_block(acp.embedded_text_resource(f"file://{c.workdir}/ctx.txt", "embedded context 777", mime_type="text/plain")),
    ]
    start = len(c.rec.updates)
    resp = await c.call("session/prompt with an image and a resource", c.conn.prompt(session_id=sid, prompt=blocks))
    turn = c.rec.updates[start:]
    check(resp.stop_reason == "end_turn", f"stopReason {resp.stop_reason}: {short(turn, 2000)}")
    check(chunk_text(turn, "agent_message_chunk").strip(), "no answer text")


SCENARIOS = {
    "basic": scenario_basic,
    "cancel": scenario_cancel,
    "permission_allow": scenario_permission_allow,
    "permission_reject": scenario_permission_reject,
    "permission_always": scenario_permission_always,
    "read_allow": scenario_read_allow,
    "modes": scenario_modes,
    "load": scenario_load,
    "mcp_stdio": scenario_mcp_stdio,
    "mcp_http": scenario_mcp_http,
    "set_model": scenario_set_model,
    "stop_reasons": scenario_stop_reasons,
    "max_turns": scenario_max_turns,
    "permission_never": scenario_permission_never,
    "cancel_permission": scenario_cancel_permission,
    "write_unasked": scenario_write_unasked,
    "rich_prompt": scenario_rich_prompt,
    "terminal": scenario_terminal,
    "cancel_terminal": scenario_cancel_terminal,
}

DEFAULT_PERMISSION = {
    "permission_allow": "allow_once",
    "permission_reject": "reject_once",
    "permission_always": "allow_always",
    "mcp_http": "allow_once",
    "permission_never": "reject_always",
    "cancel_permission": "cancelled",
    "terminal": "allow_once",
    "cancel_terminal": "allow_once",
}


async def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    permission = args.permission or DEFAULT_PERMISSION.get(args.scenario, "reject_once")
    rec = Recorder(workdir, permission, terminal=args.scenario in ("terminal", "cancel_terminal"))
    failure: str | None = None
    returncode: int | None = None
    async with acp.spawn_agent_process(
        rec,
        args.bin,
        "acp",
        "--config",
        args.config,
        cwd=str(workdir),
        transport_kwargs={"stderr": None, "limit": 16 << 20, "shutdown_timeout": 10.0},  # its log goes to ours
        observers=[rec.observe],
    ) as (conn, proc):
        rec.conn = conn
        ctx = Ctx(args, conn, rec)
        try:
            await asyncio.wait_for(SCENARIOS[args.scenario](ctx), args.timeout)
            check(not rec.problems, "protocol problems: " + "; ".join(rec.problems))
        except Failure as e:
            failure = str(e)
        except asyncio.TimeoutError:
            failure = f"the scenario did not finish in {args.timeout} s"
        except ConnectionError as e:
            try:
                code = await asyncio.wait_for(proc.wait(), 2)
            except asyncio.TimeoutError:
                code = None
            failure = f"the agent closed the connection ({e}; exit code {code}; its stderr is above)"
        except Exception as e:  # an SDK error (a response that does not fit the schema, …)
            failure = f"{type(e).__name__}: {e}"
        if proc.returncode is not None and failure is None:
            failure = f"the agent exited early with {proc.returncode}"
    returncode = proc.returncode
    if failure is None and returncode != 0:
        failure = f"the agent exited {returncode} after the client closed stdin, expected 0 within 10 s"
    if failure is not None:
        print(f"FAIL {args.scenario}: {failure}", file=sys.stderr)
        if rec.problems:
            print("protocol problems:\n  " + "\n  ".join(rec.problems), file=sys.stderr)
        print("messages from the agent (last 60):", file=sys.stderr)
        for m in rec.log[-60:]:
            print("  " + short(m, 1200), file=sys.stderr)
        return 1
    if os.environ.get("ACP_CLIENT_DUMP"):  # every message, for a look at a passing run
        for m in rec.log:
            print("  " + short(m, 100000), file=sys.stderr)
    print(f"ok {args.scenario}")
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description="ACP scenarios against `continuum acp`")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--bin", required=True, help="the continuum binary")
    p.add_argument("--config", required=True, help="its config file")
    p.add_argument("--workdir", default=os.getcwd(), help="the session's cwd (files are read and written here)")
    p.add_argument("--permission", choices=sorted(PERMISSION_KINDS | {"cancelled"}), help="how to answer permission requests")
    p.add_argument("--models", default="", help="comma-separated models the model option must list (set_model: A,B)")
    p.add_argument("--expect-model", help="basic: the new session's model")
    p.add_argument("--expect-text", help="basic: text each answer must contain (default: the prompt, as the mock echoes it)")
    p.add_argument("--expect-status", choices=["completed", "failed"], help="write_unasked: how the write ends")
    p.add_argument("--phase", type=int, choices=[1, 2], default=1, help="load: which half")
    p.add_argument("--session", help="load phase 2: the session id phase 1 printed")
    p.add_argument("--state", help="load: a file where phase 1 leaves what phase 2 compares")
    p.add_argument("--timeout", type=float, default=45.0, help="seconds for the whole scenario")
    args = p.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.config = str(Path(args.config).resolve())  # the agent runs in the workdir
    if os.sep in args.bin:
        args.bin = str(Path(args.bin).resolve())
    if args.scenario == "load" and not args.state:
        p.error("load needs --state FILE")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
