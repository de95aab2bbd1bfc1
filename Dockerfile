# Ferry's worker and agent: one image, `ferry worker` (with --agent for an agent).
FROM python:3.11.10-slim-bookworm

# Ferry itself, without the test and benchmark extras.
WORKDIR /opt/ferry
COPY pyproject.toml README.md ./
COPY models models
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY starter starter
RUN pip install --no-cache-dir . && useradd --system --create-home ferry

# Its data (the key that seals location secrets, the staging store, an agent's identity) lives
# in a volume that the worker and the agent share; /data is where an agent's files lie.
ENV FERRY_DATA_DIR=/var/lib/ferry
RUN mkdir -p /var/lib/ferry /data && chown ferry /var/lib/ferry /data
USER ferry
ENTRYPOINT ["ferry"]
CMD ["worker"]
