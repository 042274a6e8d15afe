FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY callcenter callcenter
COPY pbx_adapter pbx_adapter
COPY workers workers
COPY ui ui
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["callcenter", "serve"]
