# egaku's diffusion worker on an NVIDIA GPU: CUDA torch first, then egaku's [worker] extra, as the README's
# "Deploying a GPU worker" says. torch's CUDA wheels bring the CUDA runtime; the host brings the driver
# (NVIDIA Container Toolkit). README: "Run with Docker".
#   docker build -f deploy/docker/worker.Dockerfile -t egaku-worker .
FROM python:3.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# CUDA torch before egaku: torch==2.13.0 then satisfies the [worker] pin and pip keeps this CUDA build.
RUN python -m venv /opt/egaku \
    && /opt/egaku/bin/pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
WORKDIR /src
COPY pyproject.toml README.md ./
COPY egaku ./egaku
COPY bot ./bot
COPY agent ./agent
COPY tools ./tools
COPY worker ./worker
RUN /opt/egaku/bin/pip install --no-cache-dir ".[worker]"

FROM python:3.12-slim-bookworm
COPY --from=build /opt/egaku /opt/egaku
COPY deploy/docker/entrypoint.sh /usr/local/bin/egaku-entrypoint
RUN useradd --system --uid 10001 --create-home --home-dir /home/egaku egaku \
    && mkdir -p /data \
    && chown egaku /data
# Models download to /data (a volume): the hub cache, and egaku's own cache_dir when config.toml points there.
ENV PATH=/opt/egaku/bin:$PATH PYTHONUNBUFFERED=1 HF_HOME=/data/huggingface \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001
WORKDIR /data
EXPOSE 7861
# Healthy once the default model is loaded (/healthz says "ok"); a first download can take many minutes.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20m --retries=3 \
    CMD ["python", "-m", "worker.healthcheck", "http://127.0.0.1:7861"]
ENTRYPOINT ["egaku-entrypoint"]
# Bound to every interface of the container, so a token is required (worker.token_env in config.toml).
CMD ["egaku", "worker", "--config", "/etc/egaku/config.toml", "--host", "0.0.0.0", "--port", "7861"]
