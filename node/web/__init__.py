"""The browser viewer (`media-node web`): a page on 127.0.0.1 that watches cameras
through this node, which relays their media without decoding (docs/web.md)."""
