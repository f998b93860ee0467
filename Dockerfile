# The closeout image: the official Airflow image plus the project's locked dependencies (uv.lock).
FROM python:3.11-slim AS requirements
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock /src/
RUN cd /src && uv export --frozen --no-dev --no-emit-project --no-hashes -o /requirements.txt

FROM apache/airflow:3.3.2-python3.11
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
COPY --chown=airflow:root . /opt/closeout
RUN pip install --no-cache-dir --no-deps /opt/closeout
