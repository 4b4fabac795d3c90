# syntax=docker/dockerfile:1
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN python -m venv /opt/venv
# Dependencies first, from the lock with hashes, in their own layer.
COPY requirements/main.txt requirements/build.txt requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/main.txt -r requirements/build.txt
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY gql_app ./gql_app
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation -e .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    DATABASE_URL=sqlite+aiosqlite:////data/gql_app.db
RUN groupadd --system app && useradd --system --gid app --home-dir /app --no-create-home app \
    && mkdir -p /data && chown app:app /data
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=root:root /app /app
WORKDIR /app
USER app
VOLUME ["/data"]
EXPOSE 8000
# SECRET_KEY and DATABASE_URL come from the environment at run time; nothing is baked in.
# Migrations run in the application's startup before it accepts requests.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gql-app", "serve", "--host", "0.0.0.0", "--port", "8000"]
