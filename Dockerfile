# Production image of gridsvc (used by docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# A CJK font for static maps and PDFs; GDAL comes inside the pyogrio wheel.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gridsvc ./gridsvc
COPY geodata ./geodata
COPY maps ./maps
RUN pip install '.[maps]'
# Leaflet and plugins for the offline maps: pinned npm tarballs, integrity-checked (maps/assets.py).
ENV GRIDSVC_ASSET_DIR=/app/assets
RUN python -m maps.assets fetch

RUN useradd --system --home /app gridsvc && mkdir -p /app/var && chown gridsvc /app/var
USER gridsvc
ENV GRIDSVC_ENVIRONMENT=production GRIDSVC_HOST=0.0.0.0 GRIDSVC_VAR_DIR=/app/var
# X-Forwarded-For is ignored unless the proxy's address is set here (or at `docker run -e`);
# GRIDSVC_PUBLIC_ORIGINS names the https address users open, for the CSRF origin check.
ENV GRIDSVC_FORWARDED_ALLOW_IPS="" GRIDSVC_PUBLIC_ORIGINS=""
EXPOSE 8000
# `serve` applies migrations before it starts listening.
CMD ["gridsvc", "serve", "--workers", "2"]
