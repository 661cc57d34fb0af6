"""zkcli: an interactive ZooKeeper shell with zkCli.sh's commands and output, on the Trio client.

`zkcli` (or `python -m zkserver.shell`) runs it; `main.py` is the command line and the front
ends (prompt, stdin, one command), `commands.py` the commands, `text.py` zkCli's wording.
"""
