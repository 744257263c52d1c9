"""An MCP server built with the official Python SDK (FastMCP), for the integration tests.

Usage: fastmcp_server.py stdio | fastmcp_server.py http
Over HTTP it binds 127.0.0.1 on a free port and prints `listening <url>` on stdout first.
When MCP_TEST_PIDFILE is set, its pid is written there.
"""
import asyncio
import os
import socket
import sys

from mcp.server.fastmcp import Context, FastMCP, Image
from mcp.types import ToolAnnotations
from pydantic import BaseModel

if os.environ.get("MCP_TEST_PIDFILE"):
    with open(os.environ["MCP_TEST_PIDFILE"], "w") as f:
        f.write(str(os.getpid()))

mcp = FastMCP("demo")


@mcp.tool(annotations=ToolAnnotations(readOnlyHint=True))
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo: {text}"


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@mcp.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Report progress, one step at a time."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        await asyncio.sleep(0.05)
    return "done"


@mcp.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


class Pick(BaseModel):
    color: str


@mcp.tool()
async def ask(ctx: Context) -> str:
    """Ask the user for a color."""
    answer = await ctx.elicit(message="Which color?", schema=Pick)
    data = getattr(answer, "data", None)
    return f"{answer.action}:{data.color if data else None}"


@mcp.tool()
async def roots(ctx: Context) -> str:
    """The client's roots."""
    result = await ctx.session.list_roots()
    return " ".join(str(r.uri) for r in result.roots)


@mcp.tool()
def picture() -> list:
    """A tiny picture and a caption."""
    return ["a red dot", Image(data=b"\x89PNG\r\n\x1a\n", format="png")]


@mcp.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("this tool always fails")


def serve_http():
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    print(f"listening http://127.0.0.1:{port}/mcp", flush=True)
    config = uvicorn.Config(mcp.streamable_http_app(), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        serve_http()
    else:
        mcp.run(transport="stdio")
