# tickwise application image (used by docker-compose.yml for `tickwise db migrate`, `historical`, `live`).
# TA-Lib wheels (ta-lib 0.8.x) bundle the C library, so no compiler or system TA-Lib is needed here.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TICKWISE_CONFIG_DIR=/app/config \
    TICKWISE_DATA_DIR=/app/.data

# libgomp1: LightGBM's OpenMP runtime (not bundled in its wheel).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so a source change does not reinstall them.
COPY pyproject.toml README.md ./
COPY src/tickwise/__init__.py src/tickwise/__init__.py
RUN pip install . && pip uninstall -y tickwise

COPY . .
# Editable: the CLI finds alembic.ini and migrations/ relative to the source tree (/app).
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 10001 tickwise \
    && mkdir -p /app/.data \
    && chown -R tickwise:tickwise /app/.data

USER tickwise
EXPOSE 9108
ENTRYPOINT ["tickwise"]
CMD ["--help"]
