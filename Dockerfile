# One image for every Linju service; the compose file picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY config ./config
# Editable install: code, config/ and the intake model are read from /app.
RUN pip install -e . && useradd --create-home linju && mkdir -p /app/var && chown linju /app/var
USER linju

ENTRYPOINT ["linju"]
CMD ["run"]
