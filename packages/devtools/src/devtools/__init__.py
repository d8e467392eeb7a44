"""Development tooling: throwaway PostgreSQL, scenarios, production simulation."""
