"""A small MCP server that needs an API key, for trying isobind without network access.

It serves a made-up weather forecast computed from the city name and the date,
so every answer is repeatable. It refuses to start without FORECAST_API_KEY in
its environment, the way a real API client would, and never prints the key.

Run it directly with `python forecast.py` (stdio transport).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import sys
from typing import Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

API_KEY_VARIABLE = "FORECAST_API_KEY"

server = MCPServer(
    "forecast",
    instructions="Made-up weather forecasts for any city; deterministic, no network needed.",
)

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)


class DayForecast(BaseModel):
    """The forecast for one day in one city."""

    city: str
    date: str = Field(description="ISO date, YYYY-MM-DD")
    condition: Literal["sunny", "cloudy", "rain", "snow", "wind"]
    high_c: int = Field(description="Highest temperature in degrees Celsius")
    low_c: int = Field(description="Lowest temperature in degrees Celsius")


CONDITIONS: tuple[Literal["sunny", "cloudy", "rain", "snow", "wind"], ...] = (
    "sunny",
    "cloudy",
    "rain",
    "snow",
    "wind",
)


def _forecast(city: str, day: datetime.date) -> DayForecast:
    digest = hashlib.sha256(f"{city.lower()}|{day.isoformat()}".encode()).digest()
    low = digest[1] % 25 - 5
    high = low + 3 + digest[2] % 10
    condition = CONDITIONS[digest[0] % len(CONDITIONS)]
    if condition == "snow" and low > 1:
        condition = "rain"
    return DayForecast(city=city, date=day.isoformat(), condition=condition, high_c=high, low_c=low)


@server.tool(name="get-forecast", annotations=READ_ONLY)
def get_forecast(city: str, days: int = 3) -> list[DayForecast]:
    """Forecast for `city` for the next `days` days (1 to 7), starting today (UTC)."""
    if not 1 <= days <= 7:
        raise ToolError(f"days must be between 1 and 7, got {days}")
    today = datetime.datetime.now(datetime.UTC).date()
    return [_forecast(city, today + datetime.timedelta(days=offset)) for offset in range(days)]


@server.tool(name="list-cities", annotations=READ_ONLY)
def list_cities() -> list[str]:
    """Cities with a forecast page; any other city name works too."""
    return ["Paris", "Tokyo", "Lima", "Nairobi", "Oslo"]


def main() -> None:
    if not os.environ.get(API_KEY_VARIABLE):
        print(f"forecast: set {API_KEY_VARIABLE} to start this server", file=sys.stderr)
        raise SystemExit(1)
    server.run()


if __name__ == "__main__":
    main()
