# egaku's Discord bot: torch-free. Its LLM is an endpoint (OpenAI, Ollama...) and its worker is remote
# (worker.Dockerfile), both set in the mounted /etc/egaku/config.toml. README: "Run with Docker".
#   docker build -f deploy/docker/bot.Dockerfile -t egaku-bot .
FROM python:3.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/egaku
WORKDIR /src
COPY pyproject.toml README.md ./
COPY egaku ./egaku
COPY bot ./bot
COPY agent ./agent
COPY tools ./tools
COPY worker ./worker
# The bot's own pinned set (pyproject's [project] dependencies) and no extra: no torch, no diffusers.
RUN /opt/egaku/bin/pip install --no-cache-dir .

FROM python:3.12-slim-bookworm
COPY --from=build /opt/egaku /opt/egaku
COPY deploy/docker/entrypoint.sh /usr/local/bin/egaku-entrypoint
RUN useradd --system --uid 10001 --create-home --home-dir /home/egaku egaku \
    && mkdir -p /data \
    && chown egaku /data
ENV PATH=/opt/egaku/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
WORKDIR /data
# Compose secrets (/run/secrets/NAME) become the environment variables egaku reads.
ENTRYPOINT ["egaku-entrypoint"]
CMD ["egaku", "bot", "--config", "/etc/egaku/config.toml"]
