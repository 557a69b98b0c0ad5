"""`linju dashboard`: the staff web dashboard (aiohttp, server-rendered) with metrics and exports."""
