# Ferry's worker and agent: one image, `ferry worker` (with --agent for an agent).
FROM python:3.11.10-slim-bookworm

# Ferry itself, without the test and benchmark extras.
WORKDIR /opt/ferry
COPY pyproject.toml README.md ./
COPY models models
COPY api api
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY starter starter
RUN pip install --no-cache-dir . && useradd --system --create-home ferry

# Its data (an agent's identity, the staging store when it is not a bucket) lives in a volume
# of each container's own; /data is where an agent's files lie.
ENV FERRY_DATA_DIR=/var/lib/ferry
RUN mkdir -p /var/lib/ferry /data && chown ferry /var/lib/ferry /data
USER ferry
ENTRYPOINT ["ferry"]
CMD ["worker"]
