"""The control socket of a running switch: `pbx calls`, `pbx hangup`, `pbx reload`, ... talk to
`pbx run` through it (docs/operations.md).  `protocol` is the pure codec, `server` the asyncio
Unix-socket server with its command registry, `handlers` the switch's own commands."""
