# One image for every role of dreams-sms; the command picks the role:
#   worker   celery -A dreams_sms.worker worker -Q dreams.send,dreams.ops -l INFO   (default)
#   beat     celery -A dreams_sms.worker beat -l INFO
#   flower   dreams-sms flower --address 0.0.0.0 --port 5555
#   sandbox  dreams-sms sandbox --host 0.0.0.0 --port 8025 --admin
#   metrics  dreams-sms metrics --address 0.0.0.0 --port 9108
#   api      dreams-sms serve --address 0.0.0.0 --port 8080
# Settings come from the environment (`dreams-sms config` lists them); see
# docker-compose.yml and .env.example.

# Both stages use the same base so the venv built in the first one runs in the
# second (its interpreter symlinks point at /usr/local/bin/python3.11).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# -- builder: the wheel and a venv holding the pinned dependencies ----------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first: this layer is reused until requirements.lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

# Then the package itself, as a wheel, without touching the pinned dependencies.
COPY pyproject.toml README.md ./
COPY dreams_sms ./dreams_sms
# setuptools (bundled by venv, used by nothing at run time) is dropped from the venv.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip install --no-cache-dir --no-deps /wheels/dreams_sms-*.whl \
    && pip uninstall --yes setuptools \
    && pip check

# -- runtime: the venv only; no compiler, no sources, no pip cache ----------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 dreams \
    && useradd --system --uid 10001 --gid dreams --home-dir /home/dreams --create-home \
       --shell /usr/sbin/nologin dreams

COPY --from=builder /opt/venv /opt/venv

WORKDIR /home/dreams
USER 10001:10001

# Fail the build, not the first campaign: the package imports, the CLI loads and
# the time zone the daily limits use is available.
RUN python -c "import zoneinfo, dreams_sms.ops.cli, dreams_sms.sandbox.server, dreams_sms.api.app; zoneinfo.ZoneInfo('Asia/Riyadh')" \
    && dreams-sms --help > /dev/null

# flower, sandbox, metrics, api (the worker and beat listen on nothing)
EXPOSE 5555 8025 9108 8080

# Fits the default command: the worker answers a remote-control ping through
# Redis. Compose gives the other roles their own checks.
HEALTHCHECK --interval=30s --timeout=20s --start-period=30s --retries=3 \
    CMD celery -A dreams_sms.worker inspect ping --destination "celery@$HOSTNAME" --timeout 10 \
        > /dev/null || exit 1

CMD ["celery", "-A", "dreams_sms.worker", "worker", "-Q", "dreams.send,dreams.ops", "-l", "INFO"]
