"""CPython asyncio adapters: the only code that touches sockets, files, TLS and clocks."""
