# The operator image: slim, non-root, no torch. Build from the repository root:
#   docker build -t ghcr.io/gentrain/operator:0.1.0 .
# BASE_IMAGE: any image with Python 3.11 whose `python` and `pip` are on PATH (`make
# images` builds one from Debian's packages where no registry is reachable).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# The dependencies first, from the projects' metadata alone, in their own layer: a code
# change rebuilds only the layer after it.
COPY contract/pyproject.toml /src/contract/
COPY operator/pyproject.toml /src/operator/
RUN pip install /src/contract /src/operator && rm -rf /src
COPY contract/ /src/contract/
COPY operator/ /src/operator/
RUN pip install --no-deps --force-reinstall /src/contract /src/operator && rm -rf /src
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "gentrain_operator"]
