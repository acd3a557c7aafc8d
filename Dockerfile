# The image every yiwang service of docker-compose.yml runs: the screens bundled with node, the
# center built into a wheel, and a slim runtime that installs the wheel and runs as `yiwang`.

# The screens, as `make frontend` builds them: npm packages from the lock file, bundled by
# esbuild into dist/ (nothing is fetched from a CDN at run time).
FROM node:20-bookworm-slim AS screens
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN node build.mjs

# The center's wheel, with its Lua functions and SQL migrations as package data.
FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dispatch dispatch
COPY devices devices
COPY gis gis
COPY simulators simulators
COPY harness harness
COPY bench bench
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# The map's label glyphs are drawn from Noto Sans CJK, found at the path Debian installs it to
# (dispatch/glyphs.py), so fontconfig is not needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --disable-pip-version-check /tmp/wheels/*.whl && rm -rf /tmp/wheels
# The installed package has no frontend/ beside it: the bundle lives here instead.
COPY --from=screens /src/frontend/dist /opt/yiwang/screens
# /data holds the archive, the evidence key and the photos; created here so that a named
# volume mounted on it starts out owned by the service's user.
RUN useradd --system --uid 10001 --user-group --home-dir /data yiwang \
    && mkdir /data && chown yiwang:yiwang /data
ENV YIWANG_SCREENS_DIR=/opt/yiwang/screens \
    YIWANG_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER yiwang
WORKDIR /data
EXPOSE 8080
CMD ["yiwang", "serve"]
