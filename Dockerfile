# One image for every service; the command picks it: python -m services.<name>
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY sandbox ./sandbox
COPY deploy ./deploy
COPY bench ./bench
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "services.api"]
