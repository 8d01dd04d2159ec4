FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_CONFIG=production GUNICORN_BIND=0.0.0.0:8000
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# Every module at the top (the app, its cores and rooms, gunicorn.conf.py, and cli.py): no list to forget one in.
COPY *.py ./
COPY templates ./templates
COPY static/favicon.svg ./static/
COPY static/css ./static/css
COPY static/js ./static/js
COPY migrations ./migrations
# The catalogues are compiled here: no .mo file is committed.
COPY translations ./translations
RUN pybabel -q compile -d translations
COPY deploy/entrypoint.sh deploy/healthcheck.py deploy/maintain.sh ./deploy/
RUN mkdir -p instance logs \
    && groupadd --system --gid 10001 secureshare \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin secureshare \
    && chown -R 10001:10001 instance logs
# Numeric, so a runtime that refuses root (runAsNonRoot) can tell it is not.
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "/app/deploy/healthcheck.py"]
# SECRET_KEY, ENCRYPTION_KEYS and PUBLIC_BASE_URL (or TRUSTED_HOSTS), and usually DATABASE_URL, come from the environment.
# The entrypoint runs the migrations, then replaces itself with gunicorn (PID 1, so `docker stop` is graceful).
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
