"""`egaku doctor`: checks everything a running egaku depends on, and says in plain words what to fix.

On the bot's host (the default), in this order:

    config              the file parses and validates (the error names the key)
    discord.token       GET /users/@me: the token logs in, as a bot
    discord.intents     GET /oauth2/applications/@me: the Message Content intent, portal against config
    discord.servers     GET /users/@me/guilds: the servers the bot is in (and those sync_guild_ids lists)
    discord.permissions.<server>   the bot's permissions there and in each text channel
    discord.commands[.<server>]    the slash commands registered where sync_guild_ids says
    worker, worker.presets, worker.token   /healthz, the presets served and loaded, the bearer token
    llm.answer, llm.tools   a one-token completion, then a tool call when asked to draw
    disk                the history's folder is writable, with room to spare
    gpu[.<preset>]      where this host renders (an embedded worker): each preset's gpu_memory_gb

With `--worker` (a GPU host running `egaku worker`): config, the worker on this host, and the GPU.

Each check returns `Finding`s (ok, warn, fail or skip, a message and a fix); `Report` prints them as
text or JSON with every secret masked, and exits 1 when any failed.
"""

from egaku.doctor.findings import Finding, Report, Status
from egaku.doctor.run import Probes, diagnose, run_doctor

__all__ = ["Finding", "Probes", "Report", "Status", "diagnose", "run_doctor"]
