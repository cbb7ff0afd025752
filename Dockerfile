# authgraph's image: the package installed from its wheel, run as a user of its own.
#
#   docker build -t authgraph .
#   docker run --env-file deploy/authgraph.env authgraph migrate     # once per version
#   docker run --env-file deploy/authgraph.env -p 8000:8000 authgraph
#
# compose.yaml runs two of these behind nginx (deploy/nginx). Docker cannot build on the
# machine the tests run on: tests/test_deploy_files.py lints this file (hadolint) and keeps it
# in step with compose.yaml and deploy/; the topology itself is tested without containers
# (tests/e2e/test_deployment.py).

FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY auth ./auth
COPY db ./db
COPY graph ./graph
COPY mail ./mail
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 authgraph \
    && useradd --system --uid 10001 --gid authgraph --home-dir /var/lib/authgraph \
       --create-home --shell /usr/sbin/nologin authgraph
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/authgraph
EXPOSE 8000
# /healthz answers while the process is up; /readyz (database and Redis) is for the balancer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["authgraph"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
