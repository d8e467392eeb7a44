"""The Docker side of the compose backend: the Compose v2 binary and offline stand-in images."""
