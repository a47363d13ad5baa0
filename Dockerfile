# The services image: one image for the three gRPC services. The command picks the service:
#
#   docker run catalog-agents/services python -m services.sandbox_manager   # port 50051
#   docker run catalog-agents/services python -m services.agent_runner      # port 50052
#   docker run catalog-agents/services python -m services.orchestrator      # 50053, HTTP 8080
#
# compose.yaml runs all three (with PostgreSQL and MinIO); scripts/build_service_image.sh builds
# catalog-agents/services:<hash of its inputs> here.
#
# What it holds: `pip install .` (the services, the generated catalog.v1 code, the prompts),
# Debian's pgbouncer (for the sandbox manager), without the `kernel` extra. The sandbox manager's Docker backend runs the kernel in the
# sandbox image (catalog-agents/sandbox), never in this one, and neither the runner nor the
# orchestrator imports ibis; so CATALOG_SANDBOX_BACKEND=process (kernel subprocesses beside the
# manager, no isolation, development only) is not supported in this image: use `make serve`.
#
# BASE_IMAGE is used by both stages. It may be the official python:3.11-slim (Python in
# /usr/local) or a Debian bookworm minbase with Debian's python3 (what scripts/build_image.sh
# builds with debootstrap where no registry can be pulled from).
#
# Optional extra CA: if the build context holds a file `extra-ca.crt` (the build scripts put
# the host's CA bundle there), pip in the build stages trusts it in addition to the system CAs,
# for networks that intercept TLS. It never reaches the final image. Without it the build is the
# plain production build.
ARG BASE_IMAGE=python:3.11-slim

# --- requirements: the dependency list alone, so that editing pyproject.toml elsewhere (or our
# code) reuses the layer that installs the dependencies -------------------------------------------
FROM ${BASE_IMAGE} AS requirements

# `extra-ca.cr[t]` matches nothing when the file is absent, which COPY accepts as long as
# pyproject.toml matches.
COPY pyproject.toml extra-ca.cr[t] /tmp/in/
RUN set -eux; \
    mkdir /tmp/out; \
    python3 -c 'import tomllib, sys; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
      /tmp/in/pyproject.toml > /tmp/out/requirements.txt; \
    if [ -f /tmp/in/extra-ca.crt ]; then \
      cat /etc/ssl/certs/ca-certificates.crt /tmp/in/extra-ca.crt > /tmp/out/ca.pem \
        || cp /tmp/in/extra-ca.crt /tmp/out/ca.pem; \
    fi

# --- deps: the dependencies in /opt/venv ------------------------------------------------------
FROM ${BASE_IMAGE} AS deps

ENV DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PIP_PREFER_BINARY=1

# Every dependency ships a manylinux wheel, so nothing is compiled and no compiler is installed;
# only the venv module, where the base lacks it (Debian's python3 keeps it in python3-venv).
RUN set -eux; \
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
      apt-get update; \
      apt-get install -y --no-install-recommends python3-venv; \
      rm -rf /var/lib/apt/lists/*; \
    fi

# Cached by content: the same dependency list (and CA bundle) reuses this install.
COPY --from=requirements /tmp/out/ /tmp/build/
RUN set -eux; \
    if [ -f /tmp/build/ca.pem ]; then export PIP_CERT=/tmp/build/ca.pem; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-compile -r /tmp/build/requirements.txt; \
    chmod -R a+rX /opt/venv; \
    /opt/venv/bin/python -m compileall -q -j 0 /opt/venv

# --- wheel: our project as one wheel ------------------------------------------------------------
FROM deps AS wheel

# What `pip install .` packages (pyproject.toml's [tool.setuptools.packages.find]): services/,
# protos/ (catalog.v1) and the Python packages under sandbox/ (.dockerignore leaves out the
# sandbox image's own Dockerfile and requirements).
COPY pyproject.toml README.md /src/
COPY protos /src/protos
COPY sandbox /src/sandbox
COPY services /src/services

# setuptools comes from the build isolation pip sets up, so PIP_CERT is needed here too.
RUN set -eux; \
    if [ -f /tmp/build/ca.pem ]; then export PIP_CERT=/tmp/build/ca.pem; fi; \
    /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels /src

# --- final: the venv, the prompts, a non-root user ---------------------------------------------
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# pgbouncer: the sandbox manager fronts each PostgreSQL lease with one, so the database password
# never enters a sandbox (services/sandbox_manager/pgbouncer.py). It runs as the manager's user;
# the package's own service is never started here.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends pgbouncer; \
    rm -rf /var/lib/apt/lists/*; \
    pgbouncer --version

# uid 10002 ("catalog"), distinct from the sandbox image's 10001. /app is the working folder:
# prompts/ (read by the orchestrator as CATALOG_PROMPTS_DIR's default, `prompts`), .catalog/
# (the embedded defaults: SQLite system database, the sealing key file) and catalogs/ (a place
# for file:// outputs) are writable by that user; compose.yaml mounts volumes on the last two.
RUN set -eux; \
    groupadd --gid 10002 catalog; \
    useradd --uid 10002 --gid 10002 --no-create-home --home-dir /app --shell /usr/sbin/nologin catalog; \
    mkdir -p /app/.catalog /app/catalogs; \
    chown 10002:10002 /app/.catalog /app/catalogs; \
    find / -xdev -type f -perm /6000 -exec chmod a-s {} + || true

# The dependencies (a layer that changes only with them), then our wheel: a regular install
# (`pip install .`, not editable), checked against the dependencies, compiled.
COPY --from=deps /opt/venv /opt/venv
COPY --from=wheel /wheels /tmp/wheels
RUN set -eux; \
    /opt/venv/bin/pip install --no-index --no-deps --no-compile --disable-pip-version-check \
      /tmp/wheels/*.whl; \
    /opt/venv/bin/pip check --disable-pip-version-check; \
    rm -rf /tmp/wheels /root/.cache; \
    /opt/venv/bin/python -m compileall -q -j 0 /opt/venv
COPY prompts /app/prompts
# the price table (the runner's CATALOG_PRICES_FILE default, deploy/prices.yaml)
COPY deploy/prices.yaml /app/deploy/prices.yaml

USER 10002:10002
WORKDIR /app
EXPOSE 50051 50052 50053 8080
# The health probe (services/common/healthcheck.py) finds which service PID 1 runs.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "services.common.healthcheck"]
CMD ["python", "-m", "services.orchestrator"]
