FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY callcenter callcenter
COPY pbx_adapter pbx_adapter
COPY workers workers
COPY ui ui
RUN pip install --no-cache-dir .
# Named volumes mounted here start with this ownership: the processes run as nobody.
RUN mkdir -p /data/var /data/recordings && chown -R nobody:nogroup /data
ENV CALLCENTER_DATA_DIR=/data/var CALLCENTER_RECORDINGS_DIR=/data/recordings
USER nobody
EXPOSE 8000
CMD ["callcenter", "serve"]
