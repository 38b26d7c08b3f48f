"""bevsession_edge: the aiohttp edge worker (middleware, routes, configuration, CLI)."""
