"""Count the distinct X-Replica values over N requests; exit 1 unless it is the expected one."""

import sys
import urllib.request

url, requests, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = set()
for _ in range(requests):
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
        seen.add(response.headers["X-Replica"])
print(f"{requests} requests reached {len(seen)} replicas: {', '.join(sorted(seen))}")
sys.exit(0 if len(seen) == expected else 1)
