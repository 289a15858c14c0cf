"""Public benchmark data sets written as linkaudit workspaces (manifest + files + truth)."""
