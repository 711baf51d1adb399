# One image for every Draconic process: api (gunicorn), ws (daphne), worker, scheduler,
# flower and the one-shot migrate. docker-compose.yml picks the process by its command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# A fixed uid, so files written to volumes (exports, static) have a predictable owner.
RUN groupadd --gid 10001 draconic \
    && useradd --uid 10001 --gid draconic --create-home --shell /usr/sbin/nologin draconic

# Dependencies first: this layer is rebuilt only when requirements.txt or the SDK changes
# (the server imports draconic_sdk's job-type core: @job_type, the payload schemas).
COPY requirements.txt .
COPY sdk/ sdk/
RUN pip install -r requirements.txt ./sdk

COPY --chown=draconic:draconic . .
# var/ holds what the processes write (exports, mail files, collected static files); created
# here so that compose volumes mounted on it start out owned by the draconic user.
RUN install -d -o draconic -g draconic var var/exports var/mail var/static

USER draconic

# Static files (the Django admin, the browsable API, the API docs) are collected at build
# time into var/static, with hashed names (DEBUG=false: WhiteNoise's manifest storage). gunicorn
# serves them from there (WhiteNoise), and compose also shares them with the reverse proxy
# through a volume. SECRET_KEY exists only so that settings load here: nothing else runs at
# build time.
RUN DEBUG=false SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --noinput -v 0

EXPOSE 8000

# Production HTTP. The WebSocket /jobs/stream is served by daphne (see docker-compose.yml).
CMD ["gunicorn", "draconic.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", \
     "--access-logfile", "-", "--graceful-timeout", "30"]
