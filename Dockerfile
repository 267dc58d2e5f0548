# Herald's container image: `docker build -t herald .`, then `docker compose up` (compose.yaml) for PostgreSQL
# with the API, workers and schedulers as separate services. Run alone, the image serves everything in one
# process on SQLite under /var/lib/herald (mount a volume there to keep it).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HERALD_DATA_DIR=/var/lib/herald
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/herald --create-home herald
USER herald
WORKDIR /var/lib/herald
EXPOSE 8000
# /health answers 200 when the database answers and a worker reported in the last 30 seconds, else 503
# (urlopen raises on it, so the check fails). Worker and scheduler containers serve no HTTP: compose.yaml
# turns the check off for them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["herald", "serve", "--host", "0.0.0.0", "--port", "8000"]
