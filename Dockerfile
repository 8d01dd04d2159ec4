FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_CONFIG=production
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY app.py schema.py config.py ./
COPY templates ./templates
COPY static ./static
RUN mkdir -p instance logs static/qrcodes \
    && useradd --system --uid 10001 secureshare \
    && chown -R secureshare instance logs static/qrcodes
USER secureshare

EXPOSE 8000
# SECRET_KEY, ENCRYPTION_KEYS and PUBLIC_BASE_URL (or TRUSTED_HOSTS), and usually DATABASE_URL, come from the environment.
CMD ["sh", "-c", "flask --app app init-db && exec gunicorn --bind 0.0.0.0:8000 --workers 2 --threads 4 app:app"]
