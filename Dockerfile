# One image for every service; the command picks it: python -m services.<name>
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY sandbox ./sandbox
COPY deploy ./deploy
COPY bench ./bench
# `herald notify` sends through the SDK.
COPY sdk/python ./sdk/python
RUN pip install . ./sdk/python && useradd --system --uid 10001 --home-dir /app herald
# Nothing in the image needs root at run time.
USER herald
EXPOSE 8000 9100
CMD ["python", "-m", "services.api"]
