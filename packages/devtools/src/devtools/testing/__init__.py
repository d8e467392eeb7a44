"""Test support: a pytest plugin giving each test run one throwaway PostgreSQL, and helpers."""
