"""A streamed ACP prompt answered by llama-server: the official ACP Python SDK
(agent-client-protocol) drives `continuum acp`, whose config routes to a real llama-server.

Usage: acp_llama.py CONTINUUM_BIN CONFIG WORKDIR
"""

import asyncio
import sys

from acp import spawn_agent_process, text_block
from acp.schema import ClientCapabilities


class Client:
    def __init__(self):
        self.updates = []

    async def session_update(self, session_id, update, **kwargs):
        self.updates.append(update)

    async def request_permission(self, options, session_id, tool_call, **kwargs):
        raise AssertionError("no tool is offered, so nothing should ask")

    def on_connect(self, conn):
        pass


async def main(binary, config, workdir):
    client = Client()
    async with spawn_agent_process(client, binary, "acp", "--config", config) as (conn, _proc):
        # No fs or terminal capability: the model is offered no tools.
        init = await conn.initialize(protocol_version=1, client_capabilities=ClientCapabilities())
        assert init.protocol_version == 1, init
        session = await conn.new_session(cwd=workdir, mcp_servers=[])
        reply = await conn.prompt(
            session_id=session.session_id,
            prompt=[text_block("Name three colours of the rainbow.")],
        )
        chunks = [u for u in client.updates if u.session_update == "agent_message_chunk"]
        text = "".join(u.content.text for u in chunks)
        assert reply.stop_reason in ("end_turn", "max_tokens"), reply
        assert len(chunks) > 1, f"the answer came in {len(chunks)} chunk(s), not streamed"
        assert text.strip(), "empty answer"
        assert reply.usage is not None and reply.usage.output_tokens > 0, reply
        print(f"acp on llama-server ok: {len(chunks)} chunks, stop {reply.stop_reason}: {text[:80]!r}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
