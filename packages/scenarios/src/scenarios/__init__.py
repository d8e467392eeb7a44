"""Named data scenarios: each module here with a run() is one."""
