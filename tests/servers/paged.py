"""An MCP server that lists its 25 tools in pages of 4, with awkward names.

Tool `tool-NN` returns its own number; `delete` and `tool.with.dots` test
name sanitising. Built on the SDK's low-level server so that it controls
`nextCursor` itself.
"""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

PAGE_SIZE = 4
NAMES = [f"tool-{number:02d}" for number in range(23)] + ["delete", "tool.with.dots"]


def _tool(name: str) -> types.Tool:
    return types.Tool(
        name=name,
        description=f"Return the number of {name}.",
        input_schema={"type": "object", "properties": {}},
    )


async def list_tools(
    ctx: object, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    start = int(params.cursor) if params is not None and params.cursor else 0
    end = start + PAGE_SIZE
    cursor = str(end) if end < len(NAMES) else None
    return types.ListToolsResult(
        tools=[_tool(name) for name in NAMES[start:end]], next_cursor=cursor
    )


async def call_tool(ctx: object, params: types.CallToolRequestParams) -> types.CallToolResult:
    index = NAMES.index(params.name)
    return types.CallToolResult(content=[types.TextContent(type="text", text=str(index))])


server = Server("paged", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
