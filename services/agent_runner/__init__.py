"""The agent runner: runs an agent on a database and publishes the catalog page it writes."""
