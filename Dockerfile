# One image for every Linju service; the compose file picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY config ./config
RUN pip install . && useradd --create-home linju && mkdir -p /app/var && chown linju /app/var
USER linju

ENTRYPOINT ["linju"]
CMD ["run"]
