"""bevsession: the Python RPC layer of bevgenie-session (models, cookie sealing, transports)."""
